//! The `bindgen!` calls: host-side types and traits of the `tgrun:job` worlds (`job`, and
//! `handler` reusing its interfaces).

wasmtime::component::bindgen!({
    path: "../wit",
    world: "job",
    // Host functions may await I/O (HTTP, SQL) and may trap (a limit, a host failure);
    // a guest's own mistake comes back to it as a WIT `error` value, never as a trap.
    // The ones that never wait are plain functions: a call then skips the future and its
    // poll on the fiber (a fifth of a one-series metric write, in callgrind).
    imports: {
        "tgrun:job/logging.log": trappable,
        "tgrun:job/context.service-settings": trappable,
        "tgrun:job/prometheus.write-metrics": trappable,
        default: async | trappable,
    },
    exports: { default: async },
    with: {
        "tgrun:job/sql.transaction": crate::host::sql::Transaction,
    },
});

pub use tgrun::job::types::Error as GuestError;

/// The `handler` world (route handlers). It imports the same interfaces as `job`, so those
/// are taken from above and the host implements them once; only its export and the HTTP
/// types are its own.
pub mod handler {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "handler",
        imports: { default: async | trappable },
        exports: { default: async },
        with: {
            "tgrun:job/types": crate::bindings::tgrun::job::types,
            "tgrun:job/logging": crate::bindings::tgrun::job::logging,
            "tgrun:job/context": crate::bindings::tgrun::job::context,
            "tgrun:job/prometheus": crate::bindings::tgrun::job::prometheus,
            "tgrun:job/api-service": crate::bindings::tgrun::job::api_service,
            "tgrun:job/sql": crate::bindings::tgrun::job::sql,
        },
    });
}
