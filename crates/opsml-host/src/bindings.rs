//! Host-side bindings for the Spin interfaces declared in `wit/deps/fermyon-spin`.

wasmtime::component::bindgen!({
    path: "../../wit/deps/fermyon-spin",
    world: "fermyon:spin/local-host",
    imports: { default: async | trappable },
    with: {
        "fermyon:spin/sqlite.connection": crate::sqlite::Connection,
        "fermyon:spin/key-value.store": crate::key_value::Store,
    },
});

pub use fermyon::spin::{key_value, sqlite, variables};
