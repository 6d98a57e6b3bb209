//! The bindings wit-bindgen generates from `wit/`, for the SDK itself and for its export
//! macros; plugins use what the crate root names instead.
//!
//! [`imports`] generates the shared types and magg's `host` interface, once. Each plugin kind's
//! world then has a module of its own that reuses them (`with`) and adds its export: a `Guest`
//! trait and an `export!` macro, public so that the crate root's `export_*!` macros can call
//! it from a plugin crate (`pub_export_macro`). [`search_provider`] also generates `wasi:http`,
//! which only search providers import.
//!
//! That `export!` macro writes the whole description of its world (imports and the one export)
//! into the plugin, so a plugin's component exports exactly the kind it names, and the imports
//! it does not call are dropped when the component is made. The SDK's own descriptions list
//! only imports and need no link helpers.

/// The shared types and the `host` interface, as a world that exports nothing.
pub mod imports {
    wit_bindgen::generate!({
        inline: "
            package magg:plugin-sdk;

            world imports {
                import magg:plugin/types@0.2.0;
                import magg:plugin/host@0.2.0;
            }
        ",
        path: "../../../wit",
        generate_all,
        disable_custom_section_link_helpers: true,
    });
}

/// World `tool-filter-plugin`: the `tool-filter` export.
pub mod tool_filter {
    wit_bindgen::generate!({
        world: "magg:plugin/tool-filter-plugin@0.2.0",
        path: "../../../wit",
        with: {
            "magg:plugin/types@0.2.0": crate::bindings::imports::magg::plugin0_2_0::types,
            "magg:plugin/host@0.2.0": crate::bindings::imports::magg::plugin0_2_0::host,
        },
        pub_export_macro: true,
        default_bindings_module: "$crate::bindings::tool_filter",
        disable_custom_section_link_helpers: true,
    });
}

/// World `routing-hook-plugin`: the `routing-hook` export.
pub mod routing_hook {
    wit_bindgen::generate!({
        world: "magg:plugin/routing-hook-plugin@0.2.0",
        path: "../../../wit",
        with: {
            "magg:plugin/types@0.2.0": crate::bindings::imports::magg::plugin0_2_0::types,
            "magg:plugin/host@0.2.0": crate::bindings::imports::magg::plugin0_2_0::host,
        },
        pub_export_macro: true,
        default_bindings_module: "$crate::bindings::routing_hook",
        disable_custom_section_link_helpers: true,
    });
}

/// World `configure-plugin`: the `configure` export.
pub mod configure {
    wit_bindgen::generate!({
        world: "magg:plugin/configure-plugin@0.2.0",
        path: "../../../wit",
        with: {
            "magg:plugin/types@0.2.0": crate::bindings::imports::magg::plugin0_2_0::types,
            "magg:plugin/host@0.2.0": crate::bindings::imports::magg::plugin0_2_0::host,
        },
        pub_export_macro: true,
        default_bindings_module: "$crate::bindings::configure",
        disable_custom_section_link_helpers: true,
    });
}

/// World `search-provider-plugin`: the `search-provider` export, and `wasi:http`.
pub mod search_provider {
    wit_bindgen::generate!({
        world: "magg:plugin/search-provider-plugin@0.2.0",
        path: "../../../wit",
        with: {
            "magg:plugin/types@0.2.0": crate::bindings::imports::magg::plugin0_2_0::types,
            "magg:plugin/host@0.2.0": crate::bindings::imports::magg::plugin0_2_0::host,
        },
        pub_export_macro: true,
        default_bindings_module: "$crate::bindings::search_provider",
        generate_all,
        disable_custom_section_link_helpers: true,
    });
}

/// World `tool-provider-plugin`: the `tool-provider` export (a server whose tools run inside
/// magg), and `wasi:http` (the SDK's [`crate::http`] calls it through [`search_provider`]'s
/// bindings of the same imports).
pub mod tool_provider {
    wit_bindgen::generate!({
        world: "magg:plugin/tool-provider-plugin@0.2.0",
        path: "../../../wit",
        with: {
            "magg:plugin/types@0.2.0": crate::bindings::imports::magg::plugin0_2_0::types,
            "magg:plugin/host@0.2.0": crate::bindings::imports::magg::plugin0_2_0::host,
        },
        pub_export_macro: true,
        default_bindings_module: "$crate::bindings::tool_provider",
        generate_all,
        disable_custom_section_link_helpers: true,
    });
}
