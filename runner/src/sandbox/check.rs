//! `tgrun check`: whether a file is a component that fits the job world, and if not,
//! exactly what is missing or mistyped.

use std::path::Path;

use wasmtime::component::Component;
use wasmtime::component::Type;
use wasmtime::component::types::ComponentItem;

use super::Sandbox;
use super::component::binary_kind;
use crate::bindings::JobPre;
use crate::bindings::handler::HandlerPre;

/// The verdict on one file: what it imports and exports, and every problem found.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CheckReport {
    /// The world the component was judged against: `job`, or `handler` if it exports
    /// `handle`.
    pub world: &'static str,
    pub imports: Vec<String>,
    pub exports: Vec<String>,
    pub problems: Vec<String>,
}

impl CheckReport {
    pub fn fits(&self) -> bool {
        self.problems.is_empty()
    }
}

impl Sandbox {
    /// Whether the file at `path` is a component of the `job` world (or of the `handler`
    /// world, if it exports `handle`).
    pub fn check(&self, path: &Path) -> CheckReport {
        let mut reports = self.check_as(path, &[]);
        reports.swap_remove(0)
    }

    /// Whether the file at `path` is a component of each of `worlds` (`job`, `handler`; none
    /// given: `handler` if it exports `handle`, else `job`), a report each. A tglib
    /// service's component exports both, and is checked as each world it serves; the file
    /// is read and compiled once for all of them.
    pub fn check_as(&self, path: &Path, worlds: &[&'static str]) -> Vec<CheckReport> {
        let mut report = CheckReport {
            world: "job",
            imports: vec![],
            exports: vec![],
            problems: vec![],
        };
        let for_each = |report: CheckReport| -> Vec<CheckReport> {
            match worlds {
                [] => vec![report],
                _ => worlds
                    .iter()
                    .map(|&world| CheckReport {
                        world,
                        ..report.clone()
                    })
                    .collect(),
            }
        };
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) => {
                report.problems.push(format!("cannot read the file: {e}"));
                return for_each(report);
            }
        };
        if let Err(e) = binary_kind(&bytes) {
            report.problems.push(format!("the file {e}"));
            return for_each(report);
        }
        let component = match self.component_of(&bytes, &super::component::content_hash(&bytes)) {
            Ok(c) => c,
            Err(e) => {
                report.problems.push(format!("does not compile: {e:#}"));
                return for_each(report);
            }
        };
        let ty = component.component_type();
        report.imports = ty
            .imports(&self.engine)
            .map(|(n, _)| n.to_owned())
            .collect();
        report.exports = ty
            .exports(&self.engine)
            .map(|(n, _)| n.to_owned())
            .collect();

        for name in &report.imports {
            if !(name.starts_with("tgrun:job/") || name.starts_with("wasi:")) {
                report.problems.push(format!(
                    "imports `{name}`, which the runner does not provide (a job may import \
                     only tgrun:job/* and wasi:* interfaces)"
                ));
            }
        }
        // A component exporting `handle` is a route handler; anything else is judged as a job.
        let guessed = match ty.get_export(&self.engine, "handle") {
            Some(_) => "handler",
            None => "job",
        };
        let worlds = match worlds {
            [] => &[guessed][..],
            _ => worlds,
        };
        worlds
            .iter()
            .map(|&world| {
                let mut report = report.clone();
                self.judge_export(&component, &mut report, world == "handler");
                report
            })
            .collect()
    }

    /// Whether `component` exports the `handler` world's `handle` (else the `job` world's
    /// `run`) with its type, and links as that world: each problem into `report`.
    fn judge_export(&self, component: &Component, report: &mut CheckReport, handler: bool) {
        let ty = component.component_type();
        let (export, expected_params, signature) = if handler {
            report.world = "handler";
            (
                "handle",
                &["req: record"][..],
                "func(req: request) -> result<response, error>",
            )
        } else {
            (
                "run",
                &["ctx: record", "params: string"][..],
                "func(ctx: run-context, params: string) -> result<_, error>",
            )
        };
        match ty.get_export(&self.engine, export).map(|e| e.ty) {
            None => report.problems.push(format!(
                "does not export `{export}` (it exports: {})",
                list(&report.exports)
            )),
            Some(ComponentItem::ComponentFunc(f)) => {
                let params: Vec<String> = f
                    .params()
                    .map(|(n, t)| format!("{n}: {}", type_name(&t)))
                    .collect();
                let results: Vec<String> = f.results().map(|t| type_name(&t)).collect();
                if params != expected_params || results != ["result"] {
                    report.problems.push(format!(
                        "exports `{export}` as `func({}) -> {}`, but the {} world's `{export}` is `{signature}`",
                        params.join(", "),
                        if results.is_empty() {
                            "()".into()
                        } else {
                            results.join(", ")
                        },
                        report.world
                    ));
                }
            }
            Some(other) => report.problems.push(format!(
                "exports `{export}`, but as {}, not a function",
                item_kind(&other)
            )),
        }
        match self.linker.instantiate_pre(component) {
            Err(e) => report.problems.push(format!("imports do not match: {e:#}")),
            Ok(pre) => {
                let typed = if handler {
                    HandlerPre::new(pre).err()
                } else {
                    JobPre::new(pre).err()
                };
                if let Some(e) = typed
                    && ty.get_export(&self.engine, export).is_some()
                {
                    report
                        .problems
                        .push(format!("`{export}` has the wrong type: {e:#}"));
                }
            }
        }
    }
}

fn list(names: &[String]) -> String {
    if names.is_empty() {
        "nothing".into()
    } else {
        names.join(", ")
    }
}

fn type_name(t: &Type) -> String {
    match t {
        Type::Bool => "bool".into(),
        Type::S8 => "s8".into(),
        Type::U8 => "u8".into(),
        Type::S16 => "s16".into(),
        Type::U16 => "u16".into(),
        Type::S32 => "s32".into(),
        Type::U32 => "u32".into(),
        Type::S64 => "s64".into(),
        Type::U64 => "u64".into(),
        Type::Float32 => "f32".into(),
        Type::Float64 => "f64".into(),
        Type::Char => "char".into(),
        Type::String => "string".into(),
        Type::List(_) => "list".into(),
        Type::Record(_) => "record".into(),
        Type::Tuple(_) => "tuple".into(),
        Type::Variant(_) => "variant".into(),
        Type::Enum(_) => "enum".into(),
        Type::Option(_) => "option".into(),
        Type::Result(_) => "result".into(),
        Type::Flags(_) => "flags".into(),
        other => format!("{other:?}"),
    }
}

fn item_kind(item: &ComponentItem) -> &'static str {
    match item {
        ComponentItem::ComponentFunc(_) => "a function",
        ComponentItem::CoreFunc(_) => "a core function",
        ComponentItem::Module(_) => "a core module",
        ComponentItem::Component(_) => "a component",
        ComponentItem::ComponentInstance(_) => "an instance",
        ComponentItem::Type(_) => "a type",
        ComponentItem::Resource(_) => "a resource",
    }
}
