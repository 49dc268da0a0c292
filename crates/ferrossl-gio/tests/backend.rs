//! The module loads and registers its backend: `GIO_USE_TLS=ferrossl` selects it, and
//! without that the other installed backends keep precedence.

mod common;

use common::*;

#[test]
fn gio_use_tls_selects_the_ferrossl_backend() {
    if !have_pygobject() {
        return;
    }
    let out = run_python("backend.py", &[]);
    assert!(out.contains("default FerrosslBackend\n"), "{out}");
    assert!(out.contains("supports_tls True\n"), "{out}");
    assert!(out.contains("supports_dtls True\n"), "{out}");
    assert!(out.contains("extension ferrossl -10\n"), "{out}");
}

#[test]
fn other_backends_stay_the_default_without_gio_use_tls() {
    if !have_pygobject() {
        return;
    }
    let mut cmd = std::process::Command::new("/usr/bin/python3");
    cmd.arg(test_file("python/backend.py"));
    let out = run(gio_env(&mut cmd).env_remove("GIO_USE_TLS"));
    assert!(out.contains("extension ferrossl -10\n"), "{out}");
    let others = out
        .lines()
        .filter(|l| l.starts_with("extension ") && !l.starts_with("extension ferrossl "))
        .count();
    if others > 0 {
        assert!(!out.contains("default FerrosslBackend"), "{out}");
    } else {
        assert!(out.contains("default FerrosslBackend"), "{out}");
    }
}
