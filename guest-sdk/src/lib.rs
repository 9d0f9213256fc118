//! The guest SDK: write a tgrun job as a plain Rust function and export it with one macro.
//!
//! ```no_run
//! use serde::Deserialize;
//! use tgrun_sdk::prelude::*;
//!
//! #[derive(Deserialize)]
//! struct Params { name: String }
//!
//! fn hello(ctx: &Ctx, params: Params) -> Result<()> {
//!     info!("hello {} from run {}", params.name, ctx.run_id);
//!     Ok(())
//! }
//!
//! export_job!(hello);
//! ```
//!
//! Build it with `cargo build --target wasm32-wasip2` (crate type `cdylib`) and drop the
//! `.wasm` into the runner's modules directory under the job's name.
//!
//! Modules, each with an example of what it gives a job: [`ctx`] (the run context and
//! service settings), [`log`] (logging macros), [`prometheus`], [`api_service`] and [`sql`]
//! (the clients the runner lends), [`error`](mod@error), and [`http`] for route handlers.
//! `cargo doc -p tgrun-sdk --open` shows them all.

#![warn(missing_docs)]

pub mod api_service;
pub mod ctx;
pub mod error;
pub mod http;
pub mod log;
mod outbound;
pub mod prometheus;
pub mod sql;
// Only in the guest: on the host it would replace the process's own `write`.
#[cfg(all(target_arch = "wasm32", target_os = "wasi"))]
mod stdio;

pub use ctx::Ctx;
pub use error::{Error, ErrorKind, Result};

/// What a job file needs in scope.
pub mod prelude {
    pub use crate::prometheus::{self, Metric};
    pub use crate::{Ctx, Error, ErrorKind, Result, api_service, sql};
    pub use crate::{bail, debug, error, export_handler, export_job, info, trace, warn};
}

/// The generated bindings of the `tgrun:job` world. Not part of the SDK's API: use the
/// modules above, which keep jobs source-compatible when the WIT grows.
#[doc(hidden)]
#[allow(clippy::too_many_arguments)] // generated code
pub mod wit {
    wit_bindgen::generate!({
        path: "wit",
        world: "job",
        pub_export_macro: true,
        export_macro_name: "export_job_world",
        default_bindings_module: "tgrun_sdk::wit",
    });
}

/// The generated bindings of the `handler` world, sharing the interfaces above (only the
/// export and the HTTP types are its own). Not part of the SDK's API: use [`http`].
#[doc(hidden)]
#[allow(clippy::too_many_arguments)] // generated code
pub mod wit_handler {
    wit_bindgen::generate!({
        path: "wit",
        world: "handler",
        pub_export_macro: true,
        export_macro_name: "export_handler_world",
        default_bindings_module: "tgrun_sdk::wit_handler",
        with: {
            "tgrun:job/types@0.1.0": crate::wit::tgrun::job::types,
            "tgrun:job/logging@0.1.0": crate::wit::tgrun::job::logging,
            "tgrun:job/context@0.1.0": crate::wit::tgrun::job::context,
            "tgrun:job/prometheus@0.1.0": crate::wit::tgrun::job::prometheus,
            "tgrun:job/api-service@0.1.0": crate::wit::tgrun::job::api_service,
            "tgrun:job/sql@0.1.0": crate::wit::tgrun::job::sql,
        },
    });
}

/// Support for [`export_job!`] and [`export_handler!`]; not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use std::string::String;

    use crate::{Ctx, Error, wit};

    /// Parses the params, runs the job, turns its result into the WIT result.
    pub fn run<P, F>(ctx: wit::RunContext, params: &str, job: F) -> Result<(), wit::Error>
    where
        P: serde::de::DeserializeOwned,
        F: FnOnce(&Ctx, P) -> crate::Result<()>,
    {
        let ctx = Ctx::from_wit(ctx);
        let params: P = serde_json::from_str(params).map_err(|e| {
            Error::invalid_argument(format!("params of job '{}': {e}", ctx.job)).into_wit()
        })?;
        job(&ctx, params).map_err(Error::into_wit)
    }

    /// Runs a route handler on the request, turning its result into the WIT result.
    pub fn handle<F>(
        req: crate::wit_handler::Request,
        handler: F,
    ) -> Result<crate::wit_handler::Response, wit::Error>
    where
        F: FnOnce(&crate::http::Request) -> crate::Result<crate::http::Response>,
    {
        let req = crate::http::Request::from_wit(req);
        handler(&req)
            .map(crate::http::Response::into_wit)
            .map_err(Error::into_wit)
    }
}

/// Exports a function `fn(&Ctx, P) -> Result<()>` as the job of this component, where `P`
/// is any `serde::Deserialize` type built from the job's `params` in the configuration.
#[macro_export]
macro_rules! export_job {
    ($job:path) => {
        #[doc(hidden)]
        pub struct __TgrunJob;

        impl $crate::wit::Guest for __TgrunJob {
            fn run(
                ctx: $crate::wit::RunContext,
                params: $crate::__private::String,
            ) -> ::core::result::Result<(), $crate::wit::Error> {
                $crate::__private::run(ctx, &params, $job)
            }
        }

        $crate::wit::export_job_world!(__TgrunJob with_types_in $crate::wit);
    };
}

/// Exports a function `fn(&http::Request) -> Result<http::Response>` as the route handler
/// of this component (world `handler`), for a route configured in `service_config.json`.
#[macro_export]
macro_rules! export_handler {
    ($handler:path) => {
        #[doc(hidden)]
        pub struct __TgrunHandler;

        impl $crate::wit_handler::Guest for __TgrunHandler {
            fn handle(
                req: $crate::wit_handler::Request,
            ) -> ::core::result::Result<$crate::wit_handler::Response, $crate::wit::Error> {
                $crate::__private::handle(req, $handler)
            }
        }

        $crate::wit_handler::export_handler_world!(__TgrunHandler with_types_in $crate::wit_handler);
    };
}
