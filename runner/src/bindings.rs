//! The `bindgen!` calls: host-side types and traits of the `tgrun:job` worlds (`job`, and
//! `handler` reusing its interfaces), and the one type they name: [`HostError`].
//!
//! A leaf: it uses no other module of the runner. The SQL `transaction` resource is a
//! marker type here; the run's resource table holds `crate::host::sql::Transaction`.

wasmtime::component::bindgen!({
    path: "wit",
    world: "job",
    // Host functions may await I/O (HTTP, SQL) and may trap (a limit, a host failure);
    // a guest's own mistake comes back to it as a WIT `error` value, never as a trap.
    // The ones that never wait are plain functions: a call then skips the future and its
    // poll on the fiber (a fifth of a one-series metric write, in callgrind).
    imports: {
        "tgrun:job/logging.log": trappable,
        "tgrun:job/logging.write-output": trappable,
        "tgrun:job/context.service-settings": trappable,
        "tgrun:job/context.pipeline-config": trappable,
        "tgrun:job/context.environment": trappable,
        "tgrun:job/prometheus.write-metrics": trappable,
        default: async | trappable,
    },
    exports: { default: async },
    // A function answering `result<_, error>` fails with a `HostError`: the guest's
    // `error` value, or a trap.
    trappable_error_type: {
        "tgrun:job/types.error" => HostError,
    },
});

pub use self::tgrun::job::types::Error as GuestError;

/// How a host function fails. A guest's mistake or a remote service's failure is answered
/// to the guest as an `error` value (it decides what to do); a runner limit or the host's
/// own failure traps, ending the run.
#[derive(Debug)]
pub enum HostError {
    Guest(GuestError),
    Trap(wasmtime::Error),
}

impl From<GuestError> for HostError {
    fn from(e: GuestError) -> Self {
        Self::Guest(e)
    }
}

impl From<wasmtime::Error> for HostError {
    fn from(e: wasmtime::Error) -> Self {
        Self::Trap(e)
    }
}

impl From<wasmtime::component::ResourceTableError> for HostError {
    // A resource the guest does not hold, or a full table: the runner's limit, a trap.
    fn from(e: wasmtime::component::ResourceTableError) -> Self {
        Self::Trap(e.into())
    }
}

/// The `handler` world (route handlers). It imports the same interfaces as `job`, so those
/// are taken from above and the host implements them once; only its export and the HTTP
/// types are its own.
pub mod handler {
    wasmtime::component::bindgen!({
        path: "wit",
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
