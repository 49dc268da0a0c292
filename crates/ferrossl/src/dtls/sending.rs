//! What both engines do alike when they send: the checks before application data, and
//! sealing a record in the current write epoch, whichever record layer that is.

use rustls::{AlertDescription, ContentType};

use crate::error::{Error, Result};

use super::codec::record::{Alert, AlertLevel};
use super::epochs13::Epochs13;
use super::error::DtlsError;
use super::record::RecordLayer;

/// A record layer that seals in its current write epoch.
pub trait SealCurrent {
    /// Appends one record of `content_type` carrying `body` to `out`.
    fn seal_current(
        &mut self,
        content_type: ContentType,
        body: &[u8],
        out: &mut Vec<u8>,
    ) -> std::result::Result<(), DtlsError>;

    /// A datagram holding one alert record.
    fn alert_datagram(
        &mut self,
        level: AlertLevel,
        description: AlertDescription,
    ) -> std::result::Result<Vec<u8>, DtlsError> {
        let mut datagram = Vec::new();
        let body = Alert { level, description }.encode();
        self.seal_current(ContentType::Alert, &body, &mut datagram)?;
        Ok(datagram)
    }
}

impl SealCurrent for RecordLayer {
    fn seal_current(
        &mut self,
        content_type: ContentType,
        body: &[u8],
        out: &mut Vec<u8>,
    ) -> std::result::Result<(), DtlsError> {
        let epoch = self.write_epoch();
        self.seal(epoch, content_type, body, out)
    }
}

impl SealCurrent for Epochs13 {
    fn seal_current(
        &mut self,
        content_type: ContentType,
        body: &[u8],
        out: &mut Vec<u8>,
    ) -> std::result::Result<(), DtlsError> {
        let epoch = self.write_epoch();
        self.seal(epoch, content_type, body, out).map(|_| ())
    }
}

/// Whether application data of `len` bytes may go out now: the association stands, its
/// handshake finished, we did not close it, and the data fits one record of at most `limit`
/// bytes.
pub fn check_send(
    error: Option<&DtlsError>,
    established: bool,
    close_sent: bool,
    len: usize,
    limit: usize,
) -> Result<()> {
    if let Some(e) = error {
        return Err(e.clone().into());
    }
    if !established {
        return Err(Error::WrongState("the DTLS handshake has not finished"));
    }
    if close_sent {
        return Err(Error::ProtocolIsShutdown);
    }
    if len > limit {
        return Err(Error::InvalidArgument(format!(
            "{len} bytes do not fit one DTLS record (at most {limit})"
        )));
    }
    Ok(())
}
