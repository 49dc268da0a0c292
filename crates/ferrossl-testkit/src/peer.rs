//! Real peer programs (openssl, gnutls, python) as child processes: spawned in their own
//! process group, output captured, every wait bounded, killed on drop.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::pki::Identity;

/// A free TCP port on 127.0.0.1 (bound, read, released).
pub fn free_tcp_port() -> u16 {
    TcpListener::bind(("127.0.0.1", 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A free UDP port on 127.0.0.1.
pub fn free_udp_port() -> u16 {
    UdpSocket::bind(("127.0.0.1", 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Whether `name` is on PATH.
pub fn have_tool(name: &str) -> bool {
    find_on_path(name).is_some()
}

/// Where `name` is on PATH.
pub fn find_on_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// Whether a test can use `name`. Missing under CI is a failure (CI installs every peer);
/// elsewhere the test is skipped with the reason printed.
pub fn require_tool(name: &str) -> bool {
    if have_tool(name) {
        return true;
    }
    let package = match name {
        "gnutls-serv" | "gnutls-cli" => "gnutls-bin",
        other => other,
    };
    assert!(
        std::env::var_os("CI").is_none(),
        "{name} is required under CI: apt-get install {package}"
    );
    eprintln!("skipped: {name} not installed (apt-get install {package})");
    false
}

/// The python3 interpreter, if any.
pub fn python3() -> Option<PathBuf> {
    find_on_path("python3")
}

/// A running peer program.
pub struct PeerProcess {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
}

fn capture(mut from: impl Read + Send + 'static) -> Arc<Mutex<Vec<u8>>> {
    let buf = Arc::new(Mutex::new(Vec::new()));
    let sink = buf.clone();
    std::thread::spawn(move || {
        let mut chunk = [0u8; 4096];
        while let Ok(n) = from.read(&mut chunk) {
            if n == 0 {
                break;
            }
            sink.lock().unwrap().extend_from_slice(&chunk[..n]);
        }
    });
    buf
}

impl PeerProcess {
    /// Spawns `cmd` with piped stdio in a process group of its own.
    pub fn spawn(cmd: &mut Command) -> io::Result<Self> {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()?;
        let stdout = capture(child.stdout.take().expect("piped"));
        let stderr = capture(child.stderr.take().expect("piped"));
        let stdin = child.stdin.take();
        Ok(Self {
            child,
            stdin,
            stdout,
            stderr,
        })
    }

    fn failure(&self, what: String) -> io::Error {
        io::Error::new(
            io::ErrorKind::TimedOut,
            format!(
                "{what}\n--- stdout ---\n{}\n--- stderr ---\n{}",
                self.stdout(),
                self.stderr()
            ),
        )
    }

    /// Waits until 127.0.0.1:`port` accepts connections.
    pub fn wait_for_tcp_port(&mut self, port: u16, timeout: Duration) -> io::Result<()> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if TcpStream::connect_timeout(
                &([127, 0, 0, 1], port).into(),
                Duration::from_millis(200),
            )
            .is_ok()
            {
                return Ok(());
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(
                    self.failure(format!("peer exited ({status}) before listening on {port}"))
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(self.failure(format!(
            "peer did not listen on port {port} within {timeout:?}"
        )))
    }

    /// Waits until something listens on UDP 127.0.0.1:`port` (a datagram server that prints
    /// nothing when ready gives no other sign), as the kernel's socket table shows it.
    pub fn wait_for_udp_port(&mut self, port: u16, timeout: Duration) -> io::Result<()> {
        let wanted = format!("0100007F:{port:04X}");
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            let table = std::fs::read_to_string("/proc/net/udp").unwrap_or_default();
            if table
                .lines()
                .any(|l| l.split_whitespace().nth(1) == Some(wanted.as_str()))
            {
                return Ok(());
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(
                    self.failure(format!("peer exited ({status}) before listening on {port}"))
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(self.failure(format!(
            "peer did not listen on UDP port {port} within {timeout:?}"
        )))
    }

    /// Waits until stdout or stderr contains `needle`.
    pub fn wait_for_output(&mut self, needle: &str, timeout: Duration) -> io::Result<()> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.stdout().contains(needle) || self.stderr().contains(needle) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(self.failure(format!("peer did not print {needle:?} within {timeout:?}")))
    }

    /// Writes to the peer's stdin.
    pub fn write_stdin(&mut self, data: &[u8]) -> io::Result<()> {
        let stdin = self
            .stdin
            .as_mut()
            .ok_or_else(|| io::Error::other("stdin closed"))?;
        stdin.write_all(data)?;
        stdin.flush()
    }

    /// Closes the peer's stdin (EOF).
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Everything the peer printed on stdout so far.
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.stdout.lock().unwrap()).into_owned()
    }

    /// Everything the peer printed on stderr so far.
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned()
    }

    /// Waits for the peer to exit successfully; kills it and fails after `timeout`.
    pub fn wait_with_timeout(&mut self, timeout: Duration) -> io::Result<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                // Let the capture threads drain the pipes.
                std::thread::sleep(Duration::from_millis(50));
                return if status.success() {
                    Ok(status)
                } else {
                    Err(self.failure(format!("peer exited with {status}")))
                };
            }
            if Instant::now() > deadline {
                self.kill();
                return Err(self.failure(format!("peer still running after {timeout:?}")));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the peer's whole process group and reaps it.
    pub fn kill(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for PeerProcess {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            self.kill();
        }
    }
}

fn path(p: &std::path::Path) -> String {
    p.display().to_string()
}

/// `openssl s_server` on 127.0.0.1:`port` with `id` (chain and key) and `extra` arguments.
pub fn openssl_s_server(port: u16, id: &Identity, extra: &[String]) -> Command {
    let mut cmd = Command::new("openssl");
    cmd.args(["s_server", "-accept", &format!("127.0.0.1:{port}")]);
    cmd.args(["-cert", &path(&id.chain_path), "-key", &path(&id.key_path)]);
    cmd.args(extra);
    cmd
}

/// `openssl s_client` to 127.0.0.1:`port` with `extra` arguments.
pub fn openssl_s_client(port: u16, extra: &[String]) -> Command {
    let mut cmd = Command::new("openssl");
    cmd.args(["s_client", "-connect", &format!("127.0.0.1:{port}")]);
    cmd.args(extra);
    cmd
}

/// `gnutls-serv` on `port` with `id`. It listens on every address: run it in a private
/// network namespace (see the interop tests) so that only loopback exists.
pub fn gnutls_serv(port: u16, id: &Identity, extra: &[String]) -> Command {
    let mut cmd = Command::new("gnutls-serv");
    cmd.arg(format!("--port={port}"));
    cmd.arg(format!("--x509certfile={}", path(&id.chain_path)));
    cmd.arg(format!("--x509keyfile={}", path(&id.key_path)));
    cmd.args(extra);
    cmd
}

/// `gnutls-cli` to 127.0.0.1:`port`.
pub fn gnutls_cli(port: u16, extra: &[String]) -> Command {
    let mut cmd = Command::new("gnutls-cli");
    cmd.arg(format!("--port={port}"));
    cmd.args(extra);
    cmd.arg("127.0.0.1");
    cmd
}

/// Runs the calling test inside a private network namespace that has only a loopback
/// interface, for peers that cannot be told to bind 127.0.0.1 only (gnutls-serv binds every
/// address). Returns true inside the namespace, where the test body runs; outside it re-runs
/// the test there, asserts it passed and returns false. Without `unshare` (or the privilege to
/// use it) the test is skipped with a reason, except under CI, where that is a failure.
pub fn in_loopback_namespace(test_name: &str) -> bool {
    const MARK: &str = "FERROSSL_IN_LOOPBACK_NETNS";
    if std::env::var_os(MARK).is_some() {
        return true;
    }
    let exe = std::env::current_exe().unwrap();
    let output = std::process::Command::new("unshare")
        .args([
            "--net",
            "--",
            "sh",
            "-c",
            "ip link set lo up && exec \"$@\"",
            "sh",
        ])
        .arg(&exe)
        .args([test_name, "--exact", "--nocapture", "--test-threads=1"])
        .env(MARK, "1")
        .output();
    match output {
        Ok(out) if out.status.success() => {
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(
                text.contains("1 passed"),
                "the test did not run in the namespace:\n{text}"
            );
            false
        }
        Ok(out) if String::from_utf8_lossy(&out.stdout).contains("test result") => panic!(
            "{test_name} failed in its namespace:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
        other => {
            let why = match other {
                Ok(out) => String::from_utf8_lossy(&out.stderr).into_owned(),
                Err(e) => e.to_string(),
            };
            assert!(
                std::env::var_os("CI").is_none(),
                "CI needs a private network namespace (unshare --net, as root): {why}"
            );
            eprintln!("skipped: {test_name} needs `unshare --net` (root): {why}");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::TestPki;

    #[test]
    fn openssl_peers_talk_and_failures_carry_output() {
        if !have_tool("openssl") {
            eprintln!("skipped: openssl not installed");
            return;
        }
        let pki = TestPki::generate();
        let port = free_tcp_port();
        let mut server = PeerProcess::spawn(&mut openssl_s_server(
            port,
            &pki.server_ecdsa,
            &["-naccept".into(), "1".into()],
        ))
        .unwrap();
        // s_server prints ACCEPT once it listens; probing the port would use up -naccept 1.
        server
            .wait_for_output("ACCEPT", Duration::from_secs(10))
            .unwrap();
        let ca = pki.ca_path().display().to_string();
        let args = [
            "-CAfile".to_string(),
            ca,
            "-verify_return_error".into(),
            "-quiet".into(),
        ];
        let mut client = PeerProcess::spawn(&mut openssl_s_client(port, &args)).unwrap();
        client.write_stdin(b"hello\n").unwrap();
        server
            .wait_for_output("hello", Duration::from_secs(10))
            .unwrap();
        let err = client
            .wait_for_output("never printed", Duration::from_millis(200))
            .unwrap_err();
        assert!(err.to_string().contains("--- stderr ---"));
    }
}
