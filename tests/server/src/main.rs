//! `quiver-testserver`: runs the loopback test server, prints one JSON line describing it on
//! stdout, then serves until stdin reaches EOF or SIGTERM/SIGINT arrives.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use quiver_testserver::{H2Options, H3Options, Options, ProxyOptions, TestServer};
use tokio::signal::unix::{signal, SignalKind};

const USAGE: &str = "usage: quiver-testserver [--dir DIR] [--exit-on-stdin-eof | --ignore-stdin]
       [--h2-max-concurrent-streams N] [--h2-stream-window N] [--h2-connection-window N]
       [--h2-max-header-list-size N] [--h2-goaway-after N] [--h2-refuse-every K]
       [--h3-max-concurrent-streams N] [--h3-stream-window N] [--h3-connection-window N]
       [--h3-goaway-after N] [--h3-no-datagrams] [--h3-latency-ms N]
       [--proxy-dial-delay-ms N]";

struct Args {
    dir: Option<PathBuf>,
    watch_stdin: bool,
    h2: H2Options,
    h3: H3Options,
    proxy: ProxyOptions,
}

/// Options that take a value, as `--name VALUE` or `--name=VALUE`.
const VALUED: [&str; 13] = [
    "--dir",
    "--h2-max-concurrent-streams",
    "--h2-stream-window",
    "--h2-connection-window",
    "--h2-max-header-list-size",
    "--h2-goaway-after",
    "--h2-refuse-every",
    "--h3-max-concurrent-streams",
    "--h3-stream-window",
    "--h3-connection-window",
    "--h3-goaway-after",
    "--h3-latency-ms",
    "--proxy-dial-delay-ms",
];

fn number<T: std::str::FromStr>(name: &str, value: &str) -> Result<T, String> {
    value
        .parse()
        .map_err(|_| format!("{name} needs a number, got {value:?}"))
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
    let mut parsed = Args {
        dir: None,
        watch_stdin: true,
        h2: H2Options::default(),
        h3: H3Options::default(),
        proxy: ProxyOptions::default(),
    };
    while let Some(arg) = args.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((name, value)) if VALUED.contains(&name) => {
                (name.to_owned(), Some(value.to_owned()))
            }
            _ => (arg, None),
        };
        let mut value = || -> Result<String, String> {
            match &inline {
                Some(v) => Ok(v.clone()),
                None => args.next().ok_or_else(|| format!("{name} needs a value")),
            }
        };
        match name.as_str() {
            "--dir" => parsed.dir = Some(PathBuf::from(value()?)),
            "--h2-max-concurrent-streams" => {
                parsed.h2.max_concurrent_streams = number(&name, &value()?)?;
            }
            "--h2-stream-window" => parsed.h2.stream_window = number(&name, &value()?)?,
            "--h2-connection-window" => parsed.h2.connection_window = number(&name, &value()?)?,
            "--h2-max-header-list-size" => {
                parsed.h2.max_header_list_size = Some(number(&name, &value()?)?);
            }
            "--h2-goaway-after" => parsed.h2.goaway_after = Some(number(&name, &value()?)?),
            "--h2-refuse-every" => {
                let k: u64 = number(&name, &value()?)?;
                if k == 0 {
                    return Err("--h2-refuse-every needs a number above 0".to_owned());
                }
                parsed.h2.refuse_every = Some(k);
            }
            "--h3-max-concurrent-streams" => {
                parsed.h3.max_concurrent_streams = number(&name, &value()?)?;
            }
            "--h3-stream-window" => parsed.h3.stream_window = number(&name, &value()?)?,
            "--h3-connection-window" => parsed.h3.connection_window = number(&name, &value()?)?,
            "--h3-goaway-after" => parsed.h3.goaway_after = Some(number(&name, &value()?)?),
            "--h3-no-datagrams" => parsed.h3.datagrams = false,
            "--h3-latency-ms" => {
                parsed.h3.latency = Duration::from_millis(number(&name, &value()?)?);
            }
            "--proxy-dial-delay-ms" => {
                parsed.proxy.dial_delay = Duration::from_millis(number(&name, &value()?)?);
            }
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
    let server = TestServer::start(Options {
        dir: args.dir,
        h2: args.h2,
        h3: args.h3,
        proxy: args.proxy,
    })
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
