//! The one `bindgen!` call: host-side types and traits of the `tgrun:job` world.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "job",
    // Host functions may await I/O (HTTP, SQL) and may trap (a limit, a host failure);
    // a guest's own mistake comes back to it as a WIT `error` value, never as a trap.
    imports: { default: async | trappable },
    exports: { default: async },
    with: {
        "tgrun:job/sql.transaction": crate::host::sql::Transaction,
    },
});

pub use tgrun::job::types::Error as GuestError;
