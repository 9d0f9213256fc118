//! Fixture: tries what a sandboxed job must not be able to do, and logs each result as
//! `probe <what>: <outcome>` for the tests to read.

use tgrun_sdk::prelude::*;

fn sandbox_probe(_: &Ctx, _: serde::de::IgnoredAny) -> Result<()> {
    let file = std::fs::read_to_string("/etc/passwd");
    info!(
        "probe file: {}",
        if file.is_ok() { "READ" } else { "denied" }
    );

    let dir = std::fs::read_dir("/");
    info!(
        "probe dir: {}",
        if dir.is_ok() { "LISTED" } else { "denied" }
    );

    let env: Vec<(String, String)> = std::env::vars().collect();
    info!("probe env: {} variables", env.len());
    for (name, value) in &env {
        info!("probe env {name}={value}");
    }

    let args: Vec<String> = std::env::args().collect();
    info!("probe args: {} arguments", args.len());

    let tcp = std::net::TcpStream::connect("127.0.0.1:3306");
    info!(
        "probe tcp: {}",
        if tcp.is_ok() { "CONNECTED" } else { "denied" }
    );

    let udp = std::net::UdpSocket::bind("127.0.0.1:0");
    info!(
        "probe udp: {}",
        if udp.is_ok() { "BOUND" } else { "denied" }
    );
    Ok(())
}

export_job!(sandbox_probe);
