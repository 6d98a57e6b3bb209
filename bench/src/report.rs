//! The bench report: sections of free text and figures, each figure with an
//! optional budget. Printed for people and written as JSON.

use std::fmt::Write as _;

use serde_json::{Map, Value, json};

use crate::stats::round2;

/// What a figure should stay within. Informational: missing it never fails the run.
#[derive(Debug, Clone, Copy)]
pub enum Budget {
    /// The figure should be at most this.
    AtMost(f64),
    /// The figure should be at least this.
    AtLeast(f64),
}

impl Budget {
    fn met(self, value: f64) -> bool {
        match self {
            Budget::AtMost(limit) => value <= limit,
            Budget::AtLeast(limit) => value >= limit,
        }
    }

    fn describe(self, unit: &str) -> String {
        match self {
            Budget::AtMost(limit) => format!("≤ {} {unit}", trim(limit)),
            Budget::AtLeast(limit) => format!("≥ {} {unit}", trim(limit)),
        }
    }

    fn to_json(self) -> Value {
        match self {
            Budget::AtMost(limit) => json!({"op": "<=", "value": limit}),
            Budget::AtLeast(limit) => json!({"op": ">=", "value": limit}),
        }
    }
}

/// A number without trailing zeros: `50`, `0.95`.
fn trim(x: f64) -> String {
    let s = format!("{x:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// One reported number.
#[derive(Debug, Clone)]
pub struct Figure {
    key: String,
    label: String,
    value: f64,
    unit: &'static str,
    budget: Option<Budget>,
}

impl Figure {
    fn status(&self) -> Option<&'static str> {
        self.budget
            .map(|b| if b.met(self.value) { "PASS" } else { "OVER" })
    }
}

/// One measurement: a title, lines of text (tables), figures and raw data.
#[derive(Debug)]
pub struct Section {
    key: &'static str,
    title: String,
    lines: Vec<String>,
    figures: Vec<Figure>,
    data: Map<String, Value>,
}

impl Section {
    /// An empty section; `key` names it in the JSON report.
    pub fn new(key: &'static str, title: impl Into<String>) -> Section {
        Section {
            key,
            title: title.into(),
            lines: Vec::new(),
            figures: Vec::new(),
            data: Map::new(),
        }
    }

    /// Adds a line of text (printed before the figures).
    pub fn line(&mut self, line: impl Into<String>) {
        self.lines.push(line.into());
    }

    /// Adds a figure; `key` names it in the JSON report, `label` on screen.
    pub fn figure(
        &mut self,
        key: &str,
        label: &str,
        value: f64,
        unit: &'static str,
        budget: Option<Budget>,
    ) {
        self.figures.push(Figure {
            key: key.to_owned(),
            label: label.to_owned(),
            value,
            unit,
            budget,
        });
    }

    /// Adds raw data to the JSON report only.
    pub fn data(&mut self, key: &str, value: Value) {
        self.data.insert(key.to_owned(), value);
    }
}

/// The whole report.
#[derive(Debug)]
pub struct Report {
    header: Vec<String>,
    meta: Map<String, Value>,
    sections: Vec<Section>,
    notes: Vec<String>,
    footer: Vec<String>,
}

impl Report {
    /// An empty report; `meta` goes to the top of the JSON.
    pub fn new(meta: Map<String, Value>) -> Report {
        Report {
            header: Vec::new(),
            meta,
            sections: Vec::new(),
            notes: Vec::new(),
            footer: Vec::new(),
        }
    }

    /// Adds a header line (printed at the top).
    pub fn header(&mut self, line: impl Into<String>) {
        self.header.push(line.into());
    }

    /// Adds a line printed at the very end.
    pub fn footer(&mut self, line: impl Into<String>) {
        self.footer.push(line.into());
    }

    /// Adds a finished section.
    pub fn push(&mut self, section: Section) {
        self.sections.push(section);
    }

    /// Adds a note about something that went wrong or looked odd.
    pub fn note(&mut self, note: impl Into<String>) {
        self.notes.push(note.into());
    }

    fn budgets(&self) -> (usize, usize) {
        let figures = self.sections.iter().flat_map(|s| &s.figures);
        let with_budget: Vec<&Figure> = figures.filter(|f| f.budget.is_some()).collect();
        let met = with_budget
            .iter()
            .filter(|f| f.status() == Some("PASS"))
            .count();
        (met, with_budget.len())
    }

    /// The report as text for stdout.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for line in &self.header {
            let _ = writeln!(out, "{line}");
        }
        for section in &self.sections {
            let _ = writeln!(out, "\n{}", section.title);
            for line in &section.lines {
                let _ = writeln!(out, "   {line}");
            }
            for f in &section.figures {
                let value = if f.value.abs() >= 100.0 {
                    format!("{:.0}", f.value)
                } else {
                    format!("{:.2}", f.value)
                };
                let budget = f
                    .budget
                    .map(|b| format!("budget {}", b.describe(f.unit)))
                    .unwrap_or_default();
                let status = f.status().unwrap_or("");
                let _ = writeln!(
                    out,
                    "   {:<44} {value:>10} {:<8} {budget:<20} {status}",
                    f.label, f.unit
                );
            }
        }
        let (met, total) = self.budgets();
        let _ = writeln!(
            out,
            "\nBudgets met: {met} of {total} (informational; figures vary with machine load)"
        );
        if self.notes.is_empty() {
            let _ = writeln!(out, "Notes: none");
        } else {
            let _ = writeln!(out, "Notes:");
            for note in &self.notes {
                let _ = writeln!(out, " - {note}");
            }
        }
        for line in &self.footer {
            let _ = writeln!(out, "{line}");
        }
        out
    }

    /// The report as JSON.
    pub fn to_json(&self) -> Value {
        let sections: Vec<Value> = self
            .sections
            .iter()
            .map(|s| {
                let figures: Vec<Value> = s
                    .figures
                    .iter()
                    .map(|f| {
                        json!({
                            "key": f.key,
                            "label": f.label,
                            "value": round2(f.value),
                            "unit": f.unit,
                            "budget": f.budget.map(Budget::to_json),
                            "status": f.status(),
                        })
                    })
                    .collect();
                json!({
                    "key": s.key,
                    "title": s.title,
                    "figures": figures,
                    "data": s.data,
                })
            })
            .collect();
        let (met, total) = self.budgets();
        let mut top = self.meta.clone();
        top.insert("sections".into(), Value::Array(sections));
        top.insert("budgets_met".into(), json!(met));
        top.insert("budgets_total".into(), json!(total));
        top.insert("notes".into(), json!(self.notes));
        Value::Object(top)
    }
}
