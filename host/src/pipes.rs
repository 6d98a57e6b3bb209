//! Whole-line plumbing shared by the stdio frontend and the stdio backends: one writer per pipe
//! that writes complete lines in arrival order (so messages from two sources never interleave
//! mid-line), and a pump that turns a byte stream into such lines.

use tokio::{
    io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader},
    sync::mpsc,
};

/// Writes whole lines to `sink` in the order they arrive.
pub async fn write_lines<W: AsyncWrite + Unpin>(
    mut sink: W,
    mut lines: mpsc::UnboundedReceiver<Vec<u8>>,
) {
    while let Some(mut line) = lines.recv().await {
        if line.last() != Some(&b'\n') {
            line.push(b'\n');
        }
        // Write what is queued in one go.
        while let Ok(mut more) = lines.try_recv() {
            if more.last() != Some(&b'\n') {
                more.push(b'\n');
            }
            line.extend_from_slice(&more);
            if line.len() > 64 * 1024 {
                break;
            }
        }
        if sink.write_all(&line).await.is_err() || sink.flush().await.is_err() {
            break;
        }
    }
    let _ = sink.shutdown().await;
}

/// Forwards each line rmcp writes to the line writer.
pub async fn pump_lines<R: AsyncRead + Unpin>(source: R, out: mpsc::UnboundedSender<Vec<u8>>) {
    let mut reader = BufReader::new(source);
    loop {
        let mut line = Vec::new();
        match reader.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                if out.send(line).is_err() {
                    break;
                }
            }
        }
    }
}

/// The longest message line accepted on a pipe (bigger ones are dropped, with a log line).
pub const MAX_LINE_BYTES: usize = 64 * 1024 * 1024;

/// What [`read_line`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// A whole line (with its `\n`, if any) is in the buffer.
    Complete,
    /// A line longer than the limit was read and thrown away; the buffer is empty.
    TooLong(usize),
    /// End of input (or a read error).
    End,
}

/// Reads one line into `buf` (cleared first), keeping at most `max` bytes in memory: a longer
/// line is read to its end and discarded.
pub async fn read_line<R: AsyncBufReadExt + Unpin>(
    reader: &mut R,
    buf: &mut Vec<u8>,
    max: usize,
) -> Line {
    buf.clear();
    let mut dropped = 0usize;
    loop {
        let available = match reader.fill_buf().await {
            Ok([]) | Err(_) => {
                return if buf.is_empty() && dropped == 0 {
                    Line::End
                } else if dropped > 0 {
                    Line::TooLong(dropped)
                } else {
                    Line::Complete
                };
            }
            Ok(bytes) => bytes,
        };
        let (take, done) = match available.iter().position(|b| *b == b'\n') {
            Some(i) => (i + 1, true),
            None => (available.len(), false),
        };
        if dropped == 0 && buf.len() + take <= max {
            buf.extend_from_slice(&available[..take]);
        } else {
            dropped += buf.len() + take;
            buf.clear();
        }
        reader.consume(take);
        if done {
            return if dropped > 0 {
                Line::TooLong(dropped)
            } else {
                Line::Complete
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn long_lines_are_dropped_and_reading_goes_on() {
        let input: &[u8] = b"short\nthis line is far too long\nok\n";
        let mut reader = BufReader::with_capacity(4, input);
        let mut buf = Vec::new();
        assert_eq!(read_line(&mut reader, &mut buf, 10).await, Line::Complete);
        assert_eq!(buf, b"short\n");
        assert!(matches!(
            read_line(&mut reader, &mut buf, 10).await,
            Line::TooLong(26)
        ));
        assert!(buf.is_empty());
        assert_eq!(read_line(&mut reader, &mut buf, 10).await, Line::Complete);
        assert_eq!(buf, b"ok\n");
        assert_eq!(read_line(&mut reader, &mut buf, 10).await, Line::End);
    }
}
