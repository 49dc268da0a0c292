//! PEM (RFC 7468) blocks, including the RFC 1421 headers that OpenSSL's traditional encrypted
//! keys carry (`Proc-Type: 4,ENCRYPTED`, `DEK-Info: AES-256-CBC,<iv>`).

use base64::Engine as _;

/// One `-----BEGIN label-----` … `-----END label-----` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PemBlock {
    /// The label, e.g. "CERTIFICATE" or "RSA PRIVATE KEY".
    pub label: String,
    /// RFC 1421 headers in order of appearance, e.g. ("DEK-Info", "AES-256-CBC,…").
    pub headers: Vec<(String, String)>,
    /// The decoded body.
    pub der: Vec<u8>,
}

impl PemBlock {
    /// The value of a header, if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Encodes the block with 64-column lines, as OpenSSL writes it.
    pub fn encode(&self) -> String {
        let body = base64::engine::general_purpose::STANDARD.encode(&self.der);
        let mut out = format!("-----BEGIN {}-----\n", self.label);
        for (k, v) in &self.headers {
            out.push_str(&format!("{k}: {v}\n"));
        }
        if !self.headers.is_empty() {
            out.push('\n');
        }
        for line in body.as_bytes().chunks(64) {
            out.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
            out.push('\n');
        }
        out.push_str(&format!("-----END {}-----\n", self.label));
        out
    }
}

/// Why PEM text could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PemError {
    /// A BEGIN line has no matching END line.
    Unterminated(String),
    /// The body is not valid base64.
    BadBase64(String),
    /// The input is not text.
    NotText,
}

impl std::fmt::Display for PemError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PemError::Unterminated(l) => write!(f, "PEM block '{l}' has no END line"),
            PemError::BadBase64(l) => write!(f, "PEM block '{l}' is not valid base64"),
            PemError::NotText => write!(f, "input is not PEM text"),
        }
    }
}

/// Parses every PEM block in `input`, skipping text between blocks (as OpenSSL does).
pub fn parse_all(input: &[u8]) -> Result<Vec<PemBlock>, PemError> {
    let text = std::str::from_utf8(input).map_err(|_| PemError::NotText)?;
    let mut blocks = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let Some(label) = boundary(line.trim(), "-----BEGIN ") else {
            continue;
        };
        blocks.push(parse_block(label, &mut lines)?);
    }
    Ok(blocks)
}

fn parse_block<'a>(
    label: &str,
    lines: &mut impl Iterator<Item = &'a str>,
) -> Result<PemBlock, PemError> {
    let mut headers = Vec::new();
    let mut body = String::new();
    for line in lines.by_ref() {
        let line = line.trim();
        if let Some(end) = boundary(line, "-----END ") {
            if end != label {
                break;
            }
            let der = base64::engine::general_purpose::STANDARD
                .decode(body.as_bytes())
                .map_err(|_| PemError::BadBase64(label.to_string()))?;
            return Ok(PemBlock {
                label: label.to_string(),
                headers,
                der,
            });
        }
        match line.split_once(": ") {
            Some((k, v)) if body.is_empty() && !k.contains(' ') => {
                headers.push((k.to_string(), v.to_string()))
            }
            _ => body.push_str(line),
        }
    }
    Err(PemError::Unterminated(label.to_string()))
}

fn boundary<'a>(line: &'a str, prefix: &str) -> Option<&'a str> {
    line.strip_prefix(prefix)?.strip_suffix("-----")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_with_headers() {
        let block = PemBlock {
            label: "RSA PRIVATE KEY".into(),
            headers: vec![
                ("Proc-Type".into(), "4,ENCRYPTED".into()),
                ("DEK-Info".into(), "AES-128-CBC,00".into()),
            ],
            der: (0..200u8).collect(),
        };
        let text = format!("junk before\n{}trailing", block.encode());
        assert_eq!(parse_all(text.as_bytes()).unwrap(), vec![block]);
    }

    #[test]
    fn errors_are_precise() {
        assert_eq!(
            parse_all(b"-----BEGIN X-----\nAAAA\n"),
            Err(PemError::Unterminated("X".into()))
        );
        assert_eq!(
            parse_all(b"-----BEGIN X-----\n!!!!\n-----END X-----\n"),
            Err(PemError::BadBase64("X".into()))
        );
        assert_eq!(parse_all(&[0xff, 0xfe]), Err(PemError::NotText));
        assert!(parse_all(b"no pem here").unwrap().is_empty());
    }
}
