//! `quiver-testserver`: runs the loopback test server, prints one JSON line describing it on
//! stdout, then serves until stdin reaches EOF or SIGTERM/SIGINT arrives.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use quiver_testserver::{Options, TestServer};
use tokio::signal::unix::{signal, SignalKind};

const USAGE: &str = "usage: quiver-testserver [--dir DIR] [--exit-on-stdin-eof | --ignore-stdin]";

struct Args {
    dir: Option<PathBuf>,
    watch_stdin: bool,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
    let mut parsed = Args {
        dir: None,
        watch_stdin: true,
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--dir" => {
                let dir = args.next().ok_or("--dir needs a value")?;
                parsed.dir = Some(PathBuf::from(dir));
            }
            s if s.starts_with("--dir=") => parsed.dir = Some(PathBuf::from(&s["--dir=".len()..])),
            "--exit-on-stdin-eof" => parsed.watch_stdin = true,
            "--ignore-stdin" => parsed.watch_stdin = false,
            "-h" | "--help" => return Ok(None),
            other => return Err(format!("unknown argument: {other}")),
        }
    }
    Ok(Some(parsed))
}

/// Resolves when stdin reaches EOF (or cannot be read), watched from a plain thread so that a
/// blocked read never holds up the runtime's shutdown.
async fn stdin_eof() {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        let mut buf = [0u8; 4096];
        loop {
            match stdin.read(&mut buf) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        let _ = tx.send(());
    });
    let _ = rx.await;
}

async fn run(args: Args) -> Result<(), String> {
    let server = TestServer::start(Options { dir: args.dir })
        .await
        .map_err(|e| format!("cannot start: {e}"))?;
    let mut term = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
    let mut int = signal(SignalKind::interrupt()).map_err(|e| e.to_string())?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{}", server.json_line())
            .and_then(|()| out.flush())
            .map_err(|e| format!("cannot write to stdout: {e}"))?;
    }
    let watch_stdin = args.watch_stdin;
    let stdin = async move {
        if watch_stdin {
            stdin_eof().await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        () = stdin => {}
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    server.shutdown();
    drop(server);
    Ok(())
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(Some(args)) => args,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(msg) => {
            eprintln!("quiver-testserver: {msg}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("quiver-testserver: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run(args));
    runtime.shutdown_background();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("quiver-testserver: {msg}");
            ExitCode::FAILURE
        }
    }
}
