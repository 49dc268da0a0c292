//! GIO's `TlsInteraction`: how a connection asks its user for what it cannot know, here the
//! password of an encrypted private key.

use std::sync::{Arc, Mutex};

use crate::x509::{PKey, PassphraseCallback, X509};
use crate::Error;

use super::{GioError, GioResult};

/// GIO's `TlsInteractionResult`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InteractionResult {
    /// The interaction did not take part: the operation goes on without its help.
    Unhandled,
    /// The interaction filled in what was asked.
    Handled,
    /// The user refused or the interaction failed: the operation fails.
    Failed,
}

/// GIO's `TlsPasswordFlags`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TlsPasswordFlags(pub u32);

impl TlsPasswordFlags {
    /// The password given before was wrong.
    pub const RETRY: Self = Self(1 << 1);
    /// Few tries are left.
    pub const MANY_TRIES: Self = Self(1 << 2);
    /// This is the last try.
    pub const FINAL_TRY: Self = Self(1 << 3);

    /// Whether every flag of `other` is set.
    pub fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }
}

/// GIO's `TlsPassword`: what is asked for, and the answer.
#[derive(Debug, Default)]
pub struct TlsPassword {
    description: String,
    flags: TlsPasswordFlags,
    value: Option<Vec<u8>>,
}

impl TlsPassword {
    /// What the password is for.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// Whether this is a retry, the last try...
    pub fn flags(&self) -> TlsPasswordFlags {
        self.flags
    }

    /// Gives the password.
    pub fn set_value(&mut self, value: &[u8]) {
        self.value = Some(value.to_vec());
    }

    /// The password given, if any.
    pub fn value(&self) -> Option<&[u8]> {
        self.value.as_deref()
    }
}

/// GIO's `TlsInteraction`: implement the questions you can answer.
pub trait TlsInteraction: Send + Sync {
    /// Asks for a password (`g_tls_interaction_ask_password`).
    fn ask_password(&self, password: &mut TlsPassword) -> InteractionResult {
        let _ = password;
        InteractionResult::Unhandled
    }
}

/// How many passwords the user may try for one key.
const PASSWORD_TRIES: u32 = 3;

/// Loads a certificate chain and its private key from PEM. An encrypted key is opened with
/// a password from `interaction`, asked again (with `RETRY`) while it is wrong.
pub(super) fn load_identity(
    cert_pem: &[u8],
    key_pem: &[u8],
    interaction: Option<&Arc<dyn TlsInteraction>>,
) -> GioResult<(Vec<X509>, PKey)> {
    let chain = X509::stack_from_pem(cert_pem)?;
    if chain.is_empty() {
        return Err(Error::Missing("certificate").into());
    }
    let refused = Arc::new(Mutex::new(None));
    for attempt in 1..=PASSWORD_TRIES {
        let flags = match attempt {
            1 => TlsPasswordFlags::default(),
            PASSWORD_TRIES => {
                TlsPasswordFlags(TlsPasswordFlags::RETRY.0 | TlsPasswordFlags::FINAL_TRY.0)
            }
            _ => TlsPasswordFlags::RETRY,
        };
        let ask = asker(interaction.cloned(), flags, refused.clone());
        match PKey::from_pem(key_pem, Some(&ask)) {
            Ok(key) => return Ok((chain, key)),
            // Only a wrong password is worth another try.
            Err(Error::BadPassphrase(_)) if refused.lock().expect("lock").is_none() => {}
            Err(e) => return Err(refused.lock().expect("lock").take().unwrap_or(e.into())),
        }
    }
    Err(GioError::Tls(Error::BadPassphrase(format!(
        "wrong password for the private key after {PASSWORD_TRIES} tries"
    ))))
}

/// The passphrase callback that asks the interaction; why it gave none goes to `refused`.
fn asker(
    interaction: Option<Arc<dyn TlsInteraction>>,
    flags: TlsPasswordFlags,
    refused: Arc<Mutex<Option<GioError>>>,
) -> PassphraseCallback {
    Arc::new(move |_, _| {
        let mut password = TlsPassword {
            description: "the private key of the certificate".into(),
            flags,
            value: None,
        };
        let outcome = interaction
            .as_ref()
            .map_or(InteractionResult::Unhandled, |i| {
                i.ask_password(&mut password)
            });
        let why = match (outcome, password.value) {
            (InteractionResult::Handled, Some(value)) => return Ok(value),
            (InteractionResult::Failed, _) => GioError::Cancelled,
            _ => GioError::Tls(Error::BadPassphrase(
                "the private key is encrypted and no interaction gave its password".into(),
            )),
        };
        *refused.lock().expect("lock") = Some(why);
        Err(Error::BadPassphrase("no password".into()))
    })
}
