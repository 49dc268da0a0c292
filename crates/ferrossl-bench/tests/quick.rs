//! The quick mode runs every benchmark and prints a row for each, with a number in ferrossl's
//! column. No timing is asserted.

#[test]
fn quick_mode_prints_every_row() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ferrossl-bench"))
        .arg("--quick")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| benchmark"))
        .collect();
    // 15 TLS rows (handshakes, resumptions, bulk, memory, ceilings), 4 DTLS 1.2 rows and 5
    // DTLS 1.3 ones (handshakes with X25519 and with the hybrid, bulk, two loss rates).
    assert_eq!(rows.len(), 24, "{text}");
    for row in rows {
        let ferrossl_cell = row.split('|').nth(2).unwrap().trim();
        assert!(
            ferrossl_cell.starts_with(|c: char| c.is_ascii_digit()),
            "{row}"
        );
    }
}
