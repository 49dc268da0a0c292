//! The `ferrossl` command: `s_server`, `s_client` and `demo`, with flags modelled on
//! `openssl s_server` and `openssl s_client`.

#![forbid(unsafe_code)]

mod args;
mod client;
mod demo;
mod dtls;
mod identity;
mod server;

const USAGE: &str = "usage: ferrossl <command> [flags]
commands:
  s_server   a TLS or DTLS server (ferrossl s_server -help)
  s_client   a TLS or DTLS client (ferrossl s_client -help)
  demo       TLS 1.3, TLS 1.2 and DTLS 1.2 sessions between two ends in this process";

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let (command, rest) = match argv.split_first() {
        Some((c, rest)) => (c.as_str(), rest),
        None => {
            eprintln!("{USAGE}");
            std::process::exit(1);
        }
    };
    let wants_help = rest
        .iter()
        .any(|a| matches!(a.as_str(), "-help" | "--help" | "-h"));
    let (result, usage) = match command {
        "s_server" if wants_help => (Ok(()), Some(server::USAGE)),
        "s_client" if wants_help => (Ok(()), Some(client::USAGE)),
        "s_server" => (server::run(rest), Some(server::USAGE)),
        "s_client" => (client::run(rest), Some(client::USAGE)),
        "demo" => (demo::run(), None),
        "help" | "-help" | "--help" | "-h" => {
            println!("{USAGE}");
            return;
        }
        other => (Err(format!("unknown command {other:?}")), Some(USAGE)),
    };
    if wants_help {
        println!("{}", usage.unwrap_or(USAGE));
        return;
    }
    if let Err(e) = result {
        eprintln!("ferrossl {command}: {e}");
        if e.starts_with("unknown") || e.contains("is required") || e.contains("needs a value") {
            eprintln!("{}", usage.unwrap_or(USAGE));
        }
        std::process::exit(1);
    }
}
