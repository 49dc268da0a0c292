//! The quick mode runs every benchmark and prints a row for each, with a number in ferrossl's
//! column and, with the `wolfssl` feature, in wolfSSL's columns. No timing is asserted.

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
    let (mut rows, mut wolfssl_cells) = (0, 0);
    // The cells of a table's wolfSSL columns (its header names them; ratio columns start
    // with "ferrossl").
    let mut wolfssl_columns = Vec::new();
    for line in text.lines().filter(|l| l.starts_with("| ")) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if line.starts_with("| benchmark") {
            wolfssl_columns = (0..cells.len())
                .filter(|&i| cells[i].starts_with("wolfSSL"))
                .collect();
            continue;
        }
        rows += 1;
        let number = |i: usize| cells[i].starts_with(|c: char| c.is_ascii_digit());
        assert!(number(2), "ferrossl: {line}");
        if cfg!(feature = "wolfssl") {
            for &i in &wolfssl_columns {
                assert!(number(i), "wolfSSL: {line}");
                wolfssl_cells += 1;
            }
        }
    }
    // 15 TLS rows (handshakes, resumptions, bulk, memory, ceilings), 4 DTLS 1.2 rows and 5
    // DTLS 1.3 ones (handshakes with X25519 and with the hybrid, bulk, two loss rates).
    assert_eq!(rows, 24, "{text}");
    // wolfSSL has a cell in every DTLS row: 4 in DTLS 1.2, 5 in DTLS 1.3.
    if cfg!(feature = "wolfssl") {
        assert_eq!(wolfssl_cells, 9, "{text}");
    }
}
