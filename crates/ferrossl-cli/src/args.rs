//! A small parser for `openssl`-style flags: `-name` switches and `-name value` options.

use std::collections::HashMap;

/// Parsed flags of one subcommand.
#[derive(Debug, Default)]
pub struct Args {
    values: HashMap<&'static str, String>,
    switches: Vec<&'static str>,
}

/// What a subcommand accepts: flags that take a value, and switches.
pub struct Spec {
    pub options: &'static [&'static str],
    pub switches: &'static [&'static str],
}

impl Args {
    /// Parses `argv` against `spec`; an unknown flag or a missing value is an error.
    pub fn parse(argv: &[String], spec: &Spec) -> Result<Self, String> {
        let mut args = Args::default();
        let mut it = argv.iter();
        while let Some(arg) = it.next() {
            let name = arg.trim_start_matches('-');
            if let Some(known) = spec.options.iter().find(|o| **o == name) {
                let value = it.next().ok_or_else(|| format!("{arg} needs a value"))?;
                args.values.insert(known, value.clone());
            } else if let Some(known) = spec.switches.iter().find(|s| **s == name) {
                args.switches.push(known);
            } else {
                return Err(format!("unknown option {arg}"));
            }
        }
        Ok(args)
    }

    /// The value of an option.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// Whether a switch was given.
    pub fn has(&self, name: &str) -> bool {
        self.switches.contains(&name)
    }

    /// An option parsed as a number.
    pub fn number<T: std::str::FromStr>(&self, name: &str) -> Result<Option<T>, String> {
        self.value(name)
            .map(|v| {
                v.parse()
                    .map_err(|_| format!("-{name} needs a number, not {v:?}"))
            })
            .transpose()
    }

    /// `-name SECS` as a duration (`default` seconds when absent); zero, negative and
    /// non-finite values are refused.
    pub fn seconds(&self, name: &str, default: f64) -> Result<std::time::Duration, String> {
        let secs = self.number::<f64>(name)?.unwrap_or(default);
        if !(secs.is_finite() && secs > 0.0) {
            return Err(format!(
                "-{name} {secs}: must be a positive number of seconds"
            ));
        }
        Ok(std::time::Duration::from_secs_f64(secs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: Spec = Spec {
        options: &["accept", "naccept"],
        switches: &["www", "quiet"],
    };

    fn argv(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn parses_and_rejects() {
        let a = Args::parse(&argv("-accept 127.0.0.1:0 -www -naccept 2"), &SPEC).unwrap();
        assert_eq!(a.value("accept"), Some("127.0.0.1:0"));
        assert!(a.has("www") && !a.has("quiet"));
        assert_eq!(a.number::<u32>("naccept").unwrap(), Some(2));
        assert!(Args::parse(&argv("-bogus"), &SPEC).is_err());
        assert!(Args::parse(&argv("-accept"), &SPEC).is_err());
        let bad = Args::parse(&argv("-naccept two"), &SPEC).unwrap();
        assert!(bad.number::<u32>("naccept").is_err());
    }
}
