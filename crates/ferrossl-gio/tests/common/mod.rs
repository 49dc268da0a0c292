//! What the module's tests share: the built module in a directory of its own, and running
//! Python and C programs against it with every wait bounded.

#![allow(dead_code)] // Each test binary uses part of it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use ferrossl_testkit::peer::{require_tool, PeerProcess};

/// How long one test program may run; they take well under a second.
pub const PROGRAM_TIMEOUT: Duration = Duration::from_secs(20);

/// The file name GIO loads.
const MODULE_FILE: &str = "libgioferrossl.so";

/// The cdylib cargo built for this test run. Cargo builds a package's library before its
/// integration tests, next to them in `deps/` (and uplifts it to the profile directory).
fn built_module() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let deps = exe.parent().expect("deps directory");
    [deps.join(MODULE_FILE), deps.join("..").join(MODULE_FILE)]
        .into_iter()
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{MODULE_FILE} not found beside {}", exe.display()))
}

/// A directory holding only our module: `deps/` also holds proc-macro libraries, which GIO
/// would try to load as modules.
pub fn module_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("gio-modules");
        std::fs::create_dir_all(&dir).unwrap();
        // Copy then rename: a program still mapping an older copy keeps its file intact.
        let partial = dir.join(format!(".{MODULE_FILE}.{}", std::process::id()));
        std::fs::copy(built_module(), &partial).unwrap();
        std::fs::rename(&partial, dir.join(MODULE_FILE)).unwrap();
        dir
    })
}

/// The environment every test program runs with: our module selected, and any GLib warning
/// or critical fatal, so that one fails the program.
pub fn gio_env(cmd: &mut Command) -> &mut Command {
    cmd.env("GIO_EXTRA_MODULES", module_dir())
        .env("GIO_USE_TLS", "ferrossl")
        .env("G_DEBUG", "fatal-warnings")
}

/// The environment of a program run against glib-networking's GnuTLS backend instead, to show
/// that a test program tests what GIO promises (what passes there is GIO's behaviour, not only
/// ours). Our module stays loadable, as it would be installed beside it.
pub fn gnutls_backend_env(cmd: &mut Command) -> &mut Command {
    gio_env(cmd).env("GIO_USE_TLS", "gnutls")
}

/// Which backend a test program runs on.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Backend {
    Ferrossl,
    Gnutls,
}

impl Backend {
    /// The environment of a program on this backend.
    pub fn env(self, cmd: &mut Command) -> &mut Command {
        match self {
            Backend::Ferrossl => gio_env(cmd),
            Backend::Gnutls => gnutls_backend_env(cmd),
        }
    }
}

/// How a test program's environment is made: [`gio_env`] or [`gnutls_backend_env`].
pub type Env = fn(&mut Command) -> &mut Command;

/// Runs `tests/python/<script>` with `args` in the environment `env` makes, as
/// [`run_python`] does.
pub fn run_python_in(env: Env, script: &str, args: &[&str]) -> String {
    let mut cmd = Command::new(SYSTEM_PYTHON);
    cmd.arg(test_file(&format!("python/{script}"))).args(args);
    run(env(&mut cmd))
}

/// Whether glib-networking's GnuTLS backend is installed; under CI a missing one is a failure.
pub fn have_gnutls_backend() -> bool {
    let dir = Command::new("pkg-config")
        .args(["--variable=giomoduledir", "gio-2.0"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let found = !dir.is_empty() && Path::new(&dir).join("libgiognutls.so").is_file();
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "glib-networking is required under CI: apt-get install glib-networking"
        );
        eprintln!("skipped: glib-networking's GnuTLS backend not installed (apt-get install glib-networking)");
    }
    found
}

/// The system interpreter, where PyGObject is installed (a virtualenv's python3 may lack it).
const SYSTEM_PYTHON: &str = "/usr/bin/python3";

/// Whether Python with PyGObject can run; under CI a missing one is a failure.
pub fn have_pygobject() -> bool {
    let found = Command::new(SYSTEM_PYTHON)
        .args(["-c", "import gi; gi.require_version('Gio', '2.0')"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "PyGObject is required under CI: apt-get install python3-gi"
        );
        eprintln!("skipped: PyGObject not installed (apt-get install python3-gi)");
    }
    found
}

/// A test program's path under `tests/`.
pub fn test_file(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join(relative)
}

/// Runs `tests/python/<script>` with `args` under the module; returns its stdout, or fails
/// the test with its output if it fails or outlives [`PROGRAM_TIMEOUT`].
pub fn run_python(script: &str, args: &[&str]) -> String {
    let mut cmd = Command::new(SYSTEM_PYTHON);
    cmd.arg(test_file(&format!("python/{script}"))).args(args);
    run(gio_env(&mut cmd))
}

/// Runs `cmd` to completion within [`PROGRAM_TIMEOUT`]; returns its stdout.
pub fn run(cmd: &mut Command) -> String {
    let mut program = PeerProcess::spawn(cmd).expect("spawn test program");
    match program.wait_with_timeout(PROGRAM_TIMEOUT) {
        Ok(_) => program.stdout(),
        Err(e) => panic!("{e}"),
    }
}

/// Compiles `tests/c/<name>.c` against GIO, once per test binary (tests running in parallel
/// share it); None, after saying why, when gcc or GLib's headers are missing outside CI.
pub fn c_program(name: &str) -> Option<PathBuf> {
    static BUILT: Mutex<Vec<(String, Option<PathBuf>)>> = Mutex::new(Vec::new());
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, program)) = built.iter().find(|(n, _)| n == name) {
        return program.clone();
    }
    let program = compile(name);
    built.push((name.to_string(), program.clone()));
    program
}

fn compile(name: &str) -> Option<PathBuf> {
    if !require_tool("gcc") || !require_tool("pkg-config") {
        return None;
    }
    let flags = Command::new("pkg-config")
        .args(["--cflags", "--libs", "gio-2.0"])
        .output()
        .expect("run pkg-config");
    if !flags.status.success() {
        assert!(
            std::env::var_os("CI").is_none(),
            "GLib headers are required under CI: apt-get install libglib2.0-dev"
        );
        eprintln!("skipped: no gio-2.0.pc (apt-get install libglib2.0-dev)");
        return None;
    }
    // Built under a name of this process, then renamed: another test binary may be running
    // an older build of the same program.
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let partial = dir.join(format!(".gio-{name}.{}", std::process::id()));
    let status = Command::new("gcc")
        .args(["-Wall", "-Werror", "-o"])
        .arg(&partial)
        .arg(test_file(&format!("c/{name}.c")))
        .args(String::from_utf8(flags.stdout).unwrap().split_whitespace())
        .status()
        .expect("run gcc");
    assert!(status.success(), "gcc failed on {name}.c");
    let out = dir.join(format!("gio-{name}"));
    std::fs::rename(&partial, &out).unwrap();
    Some(out)
}
