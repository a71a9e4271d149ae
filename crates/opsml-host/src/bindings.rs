//! Host-side bindings for the Spin interfaces the components may import (`wit/deps`).

wasmtime::component::bindgen!({
    path: ["../../wit/deps/fermyon-spin", "../../wit/deps/spin-postgres"],
    inline: "
        package opsml:host;

        /// Everything the local host provides beyond WASI.
        world local-host {
            import fermyon:spin/sqlite@2.0.0;
            import fermyon:spin/key-value@2.0.0;
            import fermyon:spin/variables@2.0.0;
            import fermyon:spin/mysql@2.0.0;
            import spin:postgres/postgres@4.0.0;
        }
    ",
    world: "opsml:host/local-host",
    imports: { default: async | trappable },
    with: {
        "fermyon:spin/sqlite.connection": crate::sqlite::Connection,
        "fermyon:spin/key-value.store": crate::key_value::Store,
        "spin:postgres/postgres.connection": crate::postgres::Connection,
        "fermyon:spin/mysql.connection": crate::mysql::Connection,
    },
});

pub use fermyon::spin::{key_value, mysql, rdbms_types, sqlite, variables};
pub use spin::postgres::postgres;
