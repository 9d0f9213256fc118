//! The `runner` binary: parses the command line and maps the outcome to an exit code.

/// mimalloc rather than glibc's malloc: a run allocates and frees its store, report and
/// row on two consumer threads at once, and glibc's arenas spent about a seventh of the
/// whole path's CPU there (`BENCHMARKS.md`, issue 23).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    tgrun::cli::main()
}
