//! The DTLS engine: datagrams and time in, datagrams and application data out.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use rustls::{AlertDescription, ContentType, HandshakeType};

use crate::config::{Config, Role};
use crate::constants::OP_NO_DTLSv1_2;
use crate::error::{Error, Result};

use super::codec::message::{ClientHello, Message};
use super::codec::record::{
    handshake_fragments, is_change_cipher_spec, records, records_with_cid, Alert, AlertLevel,
    HandshakeHeader, RecordHeader,
};
use super::cookie::{self, CookieProvider, HmacCookies, ListenOutcome};
use super::error::DtlsError;
use super::flight::{self, Fragment, Reassembler, Retransmitter, MIN_MTU};
use super::handshake::{
    dtls_suites, encode_message, groups, run_servername_callback, unexpected_ccs, ClientState,
    Context, FlightBuilder, Handshake, ServerState, SessionInfo, Transcript,
};
use super::record::RecordLayer;
use super::sending::{check_send, SealCurrent};
use super::DtlsParams;

/// Records of the next epoch held while its ChangeCipherSpec is missing.
const MAX_FUTURE_RECORDS: usize = 64;
/// Application records held while the peer's Finished is missing.
const MAX_EARLY_DATA: usize = 64;
/// The highest message_seq a first ClientHello may have: 0, or a few more after cookie
/// exchanges. Bounding it keeps the 16-bit message counters far from wrapping.
const MAX_FIRST_HELLO_SEQ: u16 = 32;
/// How often the secret of the cookies for restarting clients changes (when the server has
/// no cookie provider of its own).
const RESTART_COOKIE_ROTATION: std::time::Duration = std::time::Duration::from_secs(300);

/// Counters for tests, benchmarks and diagnostics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DtlsStats {
    /// Datagrams handed out by [`super::DtlsEngine::poll_datagram`] so far (queued included).
    pub datagrams_sent: u64,
    /// Flights sent again, on a timeout or because the peer retransmitted.
    pub retransmissions: u32,
    /// Records dropped: unknown epoch, replayed, forged, malformed or out of place.
    pub records_discarded: u64,
}

/// One DTLS 1.2 association, client or server (behind [`super::DtlsEngine`]).
pub struct Engine12 {
    role: Role,
    config: Arc<Config>,
    params: DtlsParams,
    records: RecordLayer,
    transcript: Transcript,
    flight: FlightBuilder,
    session: SessionInfo,
    handshake: Handshake,
    reassembler: Reassembler,
    retransmitter: Retransmitter,
    /// The datagram size for handshake flights: the MTU, or less after the back-off.
    flight_mtu: usize,
    /// message_seq of the last message of the peer's flight before our current one: seeing
    /// it again means the peer did not get our flight (RFC 6347 §4.2.4).
    peer_flight_end: Option<u16>,
    /// Server: whether the first ClientHello fixed the message numbering.
    hello_seq_adopted: bool,
    /// Records of the next epoch that overtook its ChangeCipherSpec.
    future_records: Vec<(RecordHeader, Vec<u8>)>,
    /// Application data that overtook the peer's Finished.
    early_data: Vec<Vec<u8>>,
    outgoing: VecDeque<Vec<u8>>,
    received: VecDeque<Vec<u8>>,
    error: Option<DtlsError>,
    /// Server: the ClientHello of a restarted client that ended the association.
    restart_hello: Option<Vec<u8>>,
    /// Server without a cookie provider: the one that answers restarting clients.
    restart_cookies: Option<Arc<HmacCookies>>,
    close_sent: bool,
    close_received: bool,
    stats: DtlsStats,
}

impl Engine12 {
    /// Starts an association as `role`. A client queues its ClientHello at once (`now` arms
    /// the retransmission timer); a server waits for one.
    pub fn new(config: Arc<Config>, role: Role, params: DtlsParams, now: Instant) -> Result<Self> {
        if config.options & OP_NO_DTLSv1_2 != 0 {
            return Err(Error::UnsupportedProtocol(
                "DTLS 1.2 is disabled (OP_NO_DTLSv1_2) and DTLS 1.0 is refused",
            ));
        }
        if dtls_suites(&config).is_empty() {
            return Err(Error::NoCipherMatch);
        }
        if groups(&config).is_empty() {
            return Err(Error::InvalidArgument(
                "no ECDHE group usable with DTLS (X25519, P-256, P-384) is enabled".into(),
            ));
        }
        check_mtu(params.mtu)?;
        let mtu = params.mtu;
        if let (Some(cert), Some(key)) = (config.cert_chain.first(), &config.key) {
            key.matches(cert)?;
        } else if role == Role::Server {
            return Err(Error::Missing("certificate and private key"));
        }
        let mut engine = Self {
            role,
            config,
            params,
            records: RecordLayer::default(),
            transcript: Transcript::default(),
            flight: FlightBuilder::default(),
            session: SessionInfo::default(),
            handshake: Handshake::Failed,
            reassembler: Reassembler::default(),
            retransmitter: Retransmitter::default(),
            flight_mtu: mtu,
            peer_flight_end: None,
            hello_seq_adopted: false,
            future_records: Vec::new(),
            early_data: Vec::new(),
            outgoing: VecDeque::new(),
            received: VecDeque::new(),
            error: None,
            restart_hello: None,
            restart_cookies: None,
            close_sent: false,
            close_received: false,
            stats: DtlsStats::default(),
        };
        match role {
            Role::Client => {
                engine.advance(|_, cx| {
                    ClientState::start(cx).map(|s| Handshake::Client(Box::new(s)))
                })?;
                engine.flush_flight(now)?;
            }
            Role::Server => engine.handshake = Handshake::Server(Box::new(ServerState::start())),
        }
        Ok(engine)
    }

    /// Takes one datagram from the peer. Bad records are dropped silently (RFC 6347
    /// §4.1.2.7); an error means the association failed (a fatal alert is queued when the
    /// peer should hear why).
    pub fn handle_datagram(
        &mut self,
        datagram: &[u8],
        now: Instant,
    ) -> std::result::Result<(), DtlsError> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        let result = if self.handshake.awaits_client_hello() {
            self.handle_first_client_hello(datagram, now)
        } else if let Some(initial) = self.restarting_hello(datagram) {
            self.handle_restart_hello(&initial, datagram, now)
        } else {
            self.handle_records(datagram, now)
        };
        result.map_err(|e| self.fail(e))
    }

    /// Client: the ClientHello sent, while the ServerHello is still to come.
    pub fn sent_hello(&self) -> Option<ClientHello> {
        match &self.handshake {
            Handshake::Client(s) => s.sent_hello().cloned(),
            _ => None,
        }
    }

    /// Client: goes on as if `hello` (which offered DTLS 1.3 too and went out from a DTLS 1.3
    /// engine, its last epoch-0 record numbered `record_seq - 1`) had been ours; the server
    /// answered it with DTLS 1.2. Nothing of our own ClientHello went out.
    pub fn adopt_hello(&mut self, hello: ClientHello, record_seq: u64, now: Instant) -> Result<()> {
        self.outgoing.clear();
        self.stats = DtlsStats::default();
        self.records.set_write_sequence(0, record_seq);
        self.advance(|mut handshake, cx| {
            match &mut handshake {
                Handshake::Client(s) => s.adopt_hello(hello, cx),
                _ => None,
            }
            .ok_or_else(|| DtlsError::Internal("no ClientHello to replace".into()))?;
            Ok(handshake)
        })?;
        // Our flight is the hello that went out: kept for retransmission, not sent again.
        let Some((items, awaits_reply)) = self.flight.take() else {
            return Ok(());
        };
        self.retransmitter
            .start(items, awaits_reply, &self.params.retransmit, now);
        Ok(())
    }

    /// Whether a record handled since the last call carried our connection ID and a sequence
    /// number above all before it; clears it.
    pub fn take_newest_with_cid(&mut self) -> bool {
        self.records.take_newest_with_cid()
    }

    /// Server: whether the first ClientHello is still to come.
    pub fn awaits_client_hello(&self) -> bool {
        self.handshake.awaits_client_hello()
    }

    /// Server: the ClientHello datagram that ended the association with
    /// [`DtlsError::PeerRestarted`], once, for a new server engine.
    pub fn take_restart_hello(&mut self) -> Option<Vec<u8>> {
        self.restart_hello.take()
    }

    /// The next datagram to send.
    pub fn poll_datagram(&mut self) -> Option<Vec<u8>> {
        self.outgoing.pop_front()
    }

    /// When [`Engine12::handle_timeout`] must be called (`DTLSv1_get_timeout`).
    pub fn next_timeout(&self) -> Option<Instant> {
        self.retransmitter.deadline()
    }

    /// Lets time pass (`DTLSv1_handle_timeout`): a flight whose answer is overdue goes out
    /// again, with the timeout doubled; too many fail the handshake.
    pub fn handle_timeout(&mut self, now: Instant) -> std::result::Result<(), DtlsError> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        if self.retransmitter.deadline().is_none_or(|d| now < d) {
            return Ok(());
        }
        let result = self
            .retransmitter
            .back_off(&self.params.retransmit, now)
            .and_then(|()| {
                self.back_off_flight_mtu();
                self.resend_flight()
            });
        result.map_err(|e| self.fail(e))
    }

    fn back_off_flight_mtu(&mut self) {
        self.flight_mtu = flight::backed_off_mtu(
            self.flight_mtu,
            self.params.mtu,
            self.retransmitter.retransmissions(),
        );
    }

    /// The connection IDs negotiated (RFC 9146): the one the peer's records carry to us, and
    /// the one ours carry to the peer; empty where none.
    pub fn connection_ids(&self) -> (&[u8], &[u8]) {
        (self.records.receive_cid(), self.records.send_cid())
    }

    /// Our role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Whether the handshake finished and the association has not failed.
    pub fn is_established(&self) -> bool {
        self.error.is_none() && self.handshake.is_established()
    }

    /// The failure that ended the association, if any.
    pub fn error(&self) -> Option<&DtlsError> {
        self.error.as_ref()
    }

    /// Sends `data` as one application-data record in one datagram.
    pub fn send(&mut self, data: &[u8]) -> Result<()> {
        check_send(
            self.error.as_ref(),
            self.handshake.is_established(),
            self.close_sent,
            data.len(),
            self.records.peer_limit,
        )?;
        let mut datagram = Vec::new();
        self.records
            .seal_current(ContentType::ApplicationData, data, &mut datagram)
            .map_err(|e| Error::from(self.fail(e)))?;
        self.queue(datagram);
        Ok(())
    }

    /// The next application datagram received, in arrival order.
    pub fn recv(&mut self) -> Option<Vec<u8>> {
        self.received.pop_front()
    }

    /// Whether an application datagram received waits for [`recv`](Self::recv).
    pub fn has_received(&self) -> bool {
        !self.received.is_empty()
    }

    /// Queues a close_notify alert (once). Nothing may be sent afterwards.
    pub fn close(&mut self) -> Result<()> {
        if self.close_sent || self.error.is_some() {
            return Ok(());
        }
        self.close_sent = true;
        self.send_alert(AlertLevel::Warning, AlertDescription::CloseNotify)
            .map_err(|e| Error::from(self.fail(e)))
    }

    /// Whether we sent close_notify.
    pub fn close_sent(&self) -> bool {
        self.close_sent
    }

    /// Whether the peer sent close_notify; later records are ignored (RFC 5246 §7.2.1).
    pub fn peer_closed(&self) -> bool {
        self.close_received
    }

    /// What the handshake negotiated.
    pub fn session(&self) -> &SessionInfo {
        &self.session
    }

    /// RFC 5705 keying material; `context` `None` and `Some(b"")` differ. With the label
    /// "EXTRACTOR-dtls_srtp" and no context this is RFC 5764 §4.2's SRTP keying material.
    pub fn export_keying_material(
        &self,
        label: &[u8],
        len: usize,
        context: Option<&[u8]>,
    ) -> Result<Vec<u8>> {
        let keys = self.session.keys.as_ref().ok_or(Error::WrongState(
            "keying material exists once the handshake finished",
        ))?;
        keys.export(label, context, len)
    }

    /// The datagram size limit.
    pub fn mtu(&self) -> usize {
        self.params.mtu
    }

    /// Changes the datagram size limit (`set_ciphertext_mtu`); applies to flights sent from
    /// now on, retransmissions included.
    pub fn set_mtu(&mut self, mtu: usize) -> Result<()> {
        check_mtu(mtu)?;
        self.params.mtu = mtu;
        self.flight_mtu = mtu;
        Ok(())
    }

    /// The most application data one datagram can carry (`get_cleartext_mtu`).
    pub fn cleartext_mtu(&self) -> usize {
        let overhead = self.records.overhead(self.records.write_epoch());
        self.params
            .mtu
            .saturating_sub(overhead)
            .min(self.records.peer_limit)
    }

    /// Counters.
    pub fn stats(&self) -> DtlsStats {
        self.stats
    }

    fn queue(&mut self, datagram: Vec<u8>) {
        self.stats.datagrams_sent += 1;
        self.outgoing.push_back(datagram);
    }

    /// Runs one handshake step with the engine's parts lent out as a [`Context`].
    fn advance(
        &mut self,
        step: impl FnOnce(Handshake, &mut Context<'_>) -> std::result::Result<Handshake, DtlsError>,
    ) -> std::result::Result<(), DtlsError> {
        let handshake = std::mem::replace(&mut self.handshake, Handshake::Failed);
        let mut cx = Context {
            role: self.role,
            config: &self.config,
            params: &self.params,
            transcript: &mut self.transcript,
            flight: &mut self.flight,
            records: &mut self.records,
            session: &mut self.session,
        };
        self.handshake = step(handshake, &mut cx)?;
        Ok(())
    }

    /// Sends the flight the handshake just completed, and keeps it for retransmission.
    fn flush_flight(&mut self, now: Instant) -> std::result::Result<(), DtlsError> {
        let Some((items, awaits_reply)) = self.flight.take() else {
            return Ok(());
        };
        self.peer_flight_end = self.reassembler.next_seq().checked_sub(1);
        for datagram in flight::pack(&items, self.flight_mtu, &mut self.records)? {
            self.queue(datagram);
        }
        self.retransmitter
            .start(items, awaits_reply, &self.params.retransmit, now);
        Ok(())
    }

    /// Sends the kept flight again, with fresh record sequence numbers.
    fn resend_flight(&mut self) -> std::result::Result<(), DtlsError> {
        let Some(items) = self.retransmitter.flight().cloned() else {
            return Ok(());
        };
        self.stats.retransmissions += 1;
        for datagram in flight::pack(&items, self.flight_mtu, &mut self.records)? {
            self.queue(datagram);
        }
        Ok(())
    }

    fn send_alert(
        &mut self,
        level: AlertLevel,
        description: AlertDescription,
    ) -> std::result::Result<(), DtlsError> {
        let datagram = self.records.alert_datagram(level, description)?;
        self.queue(datagram);
        Ok(())
    }

    /// Ends the association: sends the alert the error calls for and keeps the error.
    fn fail(&mut self, e: DtlsError) -> DtlsError {
        if let Some(alert) = e.alert() {
            // The association is over either way; a failure to seal only loses the alert.
            let _ = self.send_alert(AlertLevel::Fatal, alert);
        }
        self.error = Some(e.clone());
        self.handshake = Handshake::Failed;
        self.retransmitter.clear();
        self.future_records.clear();
        e
    }

    /// Server, established: an epoch-0 ClientHello other than the one that began this
    /// association (a delayed copy of that one is old news) may come from a restarted client.
    fn restarting_hello(&self, datagram: &[u8]) -> Option<cookie::InitialHello> {
        if self.role != Role::Server || !self.handshake.is_established() {
            return None;
        }
        cookie::initial_hello(datagram)
            .filter(|i| Some(i.hello.random) != self.session.client_random)
    }

    /// RFC 6347 §4.2.8: a restarting client gets a stateless HelloVerifyRequest, and the
    /// association goes on; only a valid cookie, which proves the client gets our datagrams,
    /// ends it. Unauthenticated datagrams never do.
    fn handle_restart_hello(
        &mut self,
        initial: &cookie::InitialHello,
        datagram: &[u8],
        now: Instant,
    ) -> std::result::Result<(), DtlsError> {
        let provider: Arc<dyn CookieProvider> = match &self.params.cookies {
            Some(p) => p.clone(),
            None => self
                .restart_cookies
                .get_or_insert_with(|| Arc::new(HmacCookies::new(RESTART_COOKIE_ROTATION)))
                .clone(),
        };
        match cookie::verify_or_challenge(
            provider.as_ref(),
            self.params.peer_addr,
            initial,
            datagram.len(),
            now,
        ) {
            ListenOutcome::HelloVerifyRequest(answer) => self.queue(answer),
            ListenOutcome::Drop => self.stats.records_discarded += 1,
            ListenOutcome::Verified => {
                self.restart_hello = Some(datagram.to_vec());
                return Err(DtlsError::PeerRestarted);
            }
        }
        Ok(())
    }

    /// A server's first ClientHello. With cookies it is checked statelessly and must come
    /// whole in one record; then, or without cookies, its message_seq numbers the handshake
    /// (RFC 6347 §4.2.1) and it goes the usual way.
    fn handle_first_client_hello(
        &mut self,
        datagram: &[u8],
        now: Instant,
    ) -> std::result::Result<(), DtlsError> {
        if let Some(provider) = &self.params.cookies {
            let Some(initial) = cookie::initial_hello(datagram)
                .filter(|i| i.handshake.message_seq <= MAX_FIRST_HELLO_SEQ)
            else {
                self.stats.records_discarded += 1;
                return Ok(());
            };
            match cookie::verify_or_challenge(
                provider.as_ref(),
                self.params.peer_addr,
                &initial,
                datagram.len(),
                now,
            ) {
                ListenOutcome::Verified => {}
                // Stateless: no timer, nothing kept (HelloVerifyRequests are not
                // retransmitted, RFC 6347 §4.2.4).
                ListenOutcome::HelloVerifyRequest(answer) => {
                    self.queue(answer);
                    return Ok(());
                }
                ListenOutcome::Drop => {
                    self.stats.records_discarded += 1;
                    return Ok(());
                }
            }
            self.reassembler.restart_at(initial.handshake.message_seq);
            // Our first records reuse the ClientHello's sequence number (RFC 6347 §4.2.1).
            self.records.set_write_sequence(0, initial.record.sequence);
            self.hello_seq_adopted = true;
        } else if !self.hello_seq_adopted {
            let Some((seq, record_seq)) =
                first_client_hello(datagram).filter(|(s, _)| *s <= MAX_FIRST_HELLO_SEQ)
            else {
                self.stats.records_discarded += 1;
                return Ok(());
            };
            self.reassembler.restart_at(seq);
            // As above: after an external cookie exchange (`cookie::listen`) the client has
            // seen our HelloVerifyRequest with the sequence number of its first ClientHello.
            self.records.set_write_sequence(0, record_seq);
            self.hello_seq_adopted = true;
        }
        self.handle_records(datagram, now)
    }

    /// Handles each record of a datagram; with a connection ID negotiated, records carry ours
    /// (RFC 9146 §4).
    fn handle_records(
        &mut self,
        datagram: &[u8],
        now: Instant,
    ) -> std::result::Result<(), DtlsError> {
        let cid = self.records.receive_cid().to_vec();
        for (header, body) in records_with_cid(datagram, &cid) {
            self.handle_record(header, body, now)?;
        }
        Ok(())
    }

    fn handle_record(
        &mut self,
        header: RecordHeader,
        body: &[u8],
        now: Instant,
    ) -> std::result::Result<(), DtlsError> {
        if self.close_received || self.error.is_some() {
            return Ok(());
        }
        let read_epoch = self.records.read_epoch();
        if header.epoch > read_epoch {
            // Records of the next epoch can overtake the ChangeCipherSpec that opens it.
            if header.epoch == read_epoch + 1
                && !self.handshake.is_established()
                && self.future_records.len() < MAX_FUTURE_RECORDS
            {
                self.future_records.push((header, body.to_vec()));
            } else {
                self.stats.records_discarded += 1;
            }
            return Ok(());
        }
        let Some((content_type, plain)) = self.records.open(&header, body) else {
            self.stats.records_discarded += 1;
            return Ok(());
        };
        match content_type {
            ContentType::Handshake => self.handle_handshake_record(header.epoch, &plain, now),
            ContentType::ChangeCipherSpec => {
                self.handle_change_cipher_spec(header.epoch, &plain, now)
            }
            ContentType::Alert => self.handle_alert(header.epoch, &plain),
            ContentType::ApplicationData => {
                self.handle_application_data(header.epoch, plain);
                Ok(())
            }
            _ => {
                self.stats.records_discarded += 1;
                Ok(())
            }
        }
    }

    fn handle_handshake_record(
        &mut self,
        epoch: u16,
        body: &[u8],
        now: Instant,
    ) -> std::result::Result<(), DtlsError> {
        for fragment in handshake_fragments(body) {
            let Ok((header, data)) = fragment else {
                self.stats.records_discarded += 1;
                break;
            };
            if epoch < self.records.read_epoch() {
                // An older epoch only carries retransmissions now.
                self.on_old_fragment(&header)?;
            } else if self.handshake.is_established() {
                self.after_handshake_fragment(&header)?;
            } else {
                match self.reassembler.insert(epoch, &header, data) {
                    Fragment::Old => self.on_old_fragment(&header)?,
                    Fragment::Accepted => self.deliver_messages(now)?,
                    Fragment::Dropped => self.stats.records_discarded += 1,
                }
            }
        }
        Ok(())
    }

    /// Hands complete messages to the handshake, in order, and sends what it answers.
    fn deliver_messages(&mut self, now: Instant) -> std::result::Result<(), DtlsError> {
        while let Some(m) = self.reassembler.pop() {
            // RFC 5246 §7.4.1.1: HelloRequest is ignored during a handshake and stays out
            // of the transcript.
            if m.msg_type == HandshakeType::HelloRequest {
                continue;
            }
            let message = Message::read(m.msg_type, &m.body)?;
            if self.handshake.awaits_client_hello() {
                // A server answers with the ClientHello's message_seq (RFC 6347 §4.2.1).
                self.flight.set_next_message_seq(m.message_seq);
                if let Message::ClientHello(hello) = &message {
                    run_servername_callback(hello, &mut self.config, &mut self.params)?;
                }
            }
            self.transcript
                .add(&encode_message(m.msg_type, m.message_seq, &m.body));
            self.advance(|hs, cx| hs.handle(message, cx))?;
            self.flush_flight(now)?;
            if self.handshake.is_established() {
                self.on_established();
                break;
            }
        }
        Ok(())
    }

    fn on_established(&mut self) {
        self.received.extend(self.early_data.drain(..));
        self.future_records.clear();
        if self.retransmitter.deadline().is_some() {
            // The peer's Finished proves it has our flight. A final flight (the server's in
            // a full handshake, the client's in an abbreviated one) stays to answer the
            // peer's retransmissions.
            self.retransmitter.clear();
        }
        if let (Some(log), Some(random), Some(master)) = (
            &self.config.keylog,
            self.session.client_random,
            self.session.keys.as_ref().map(|k| *k.master_secret()),
        ) {
            // NSS key log format, as the TLS engine writes it.
            let line = format!("CLIENT_RANDOM {} {}", hex(&random), hex(&master));
            log(&self.params.ex_data, line.as_bytes());
        }
    }

    /// A fragment of a message already delivered. When it ends the peer's previous flight,
    /// the peer is retransmitting because ours was lost: send ours again (RFC 6347 §4.2.4).
    fn on_old_fragment(&mut self, header: &HandshakeHeader) -> std::result::Result<(), DtlsError> {
        if Some(header.message_seq) == self.peer_flight_end && header.is_last_fragment() {
            self.resend_flight()?;
        }
        Ok(())
    }

    /// Handshake traffic after the handshake: retransmissions, or a renegotiation attempt,
    /// which is refused with a no_renegotiation warning (RFC 5246 §7.2.2, RFC 5746 §4.2).
    fn after_handshake_fragment(
        &mut self,
        header: &HandshakeHeader,
    ) -> std::result::Result<(), DtlsError> {
        let renegotiation = match (self.role, header.msg_type) {
            (Role::Client, HandshakeType::HelloRequest) => true,
            (Role::Server, HandshakeType::ClientHello) => {
                header.message_seq >= self.reassembler.next_seq()
            }
            _ => false,
        };
        if renegotiation {
            if header.fragment_offset == 0 {
                self.send_alert(AlertLevel::Warning, AlertDescription::NoRenegotiation)?;
            }
            return Ok(());
        }
        if header.message_seq < self.reassembler.next_seq() {
            return self.on_old_fragment(header);
        }
        self.stats.records_discarded += 1;
        Ok(())
    }

    fn handle_change_cipher_spec(
        &mut self,
        epoch: u16,
        body: &[u8],
        now: Instant,
    ) -> std::result::Result<(), DtlsError> {
        if !is_change_cipher_spec(body) || epoch < self.records.read_epoch() {
            // Malformed, or part of a retransmitted flight of an older epoch.
            self.stats.records_discarded += 1;
            return Ok(());
        }
        if !self.handshake.expects_change_cipher_spec() {
            if epoch == 0 {
                // It overtook messages of its flight; the peer will retransmit them with it.
                self.stats.records_discarded += 1;
                return Ok(());
            }
            // A ChangeCipherSpec under the new keys: a second one (RFC 5246 §7.1).
            return Err(unexpected_ccs(self.handshake.expects()));
        }
        let handshake = std::mem::replace(&mut self.handshake, Handshake::Failed);
        self.handshake = handshake.handle_change_cipher_spec()?;
        self.reassembler.drop_epochs_before(epoch + 1);
        self.records.activate_read();
        // Records that overtook the ChangeCipherSpec can be read now.
        for (header, body) in std::mem::take(&mut self.future_records) {
            self.handle_record(header, &body, now)?;
        }
        Ok(())
    }

    fn handle_alert(&mut self, epoch: u16, body: &[u8]) -> std::result::Result<(), DtlsError> {
        let Ok(alert) = Alert::read(body) else {
            self.stats.records_discarded += 1;
            return Ok(());
        };
        if epoch != self.records.read_epoch() {
            // Unprotected leftovers cannot end a protected association.
            self.stats.records_discarded += 1;
            return Ok(());
        }
        if alert.description == AlertDescription::CloseNotify {
            self.close_received = true;
            return Ok(());
        }
        match alert.level {
            AlertLevel::Fatal => Err(DtlsError::AlertReceived(alert.description)),
            AlertLevel::Warning => Ok(()),
        }
    }

    fn handle_application_data(&mut self, epoch: u16, data: Vec<u8>) {
        if epoch == 0 || epoch != self.records.read_epoch() {
            // Application data is never valid in the clear (RFC 6347 §4.1).
            self.stats.records_discarded += 1;
        } else if self.handshake.is_established() {
            // The peer has our Finished: nothing will need retransmitting.
            self.retransmitter.clear();
            self.received.push_back(data);
        } else if self.early_data.len() < MAX_EARLY_DATA {
            // The new epoch is open but the peer's Finished is missing (RFC 6347 §4.1).
            self.early_data.push(data);
        } else {
            self.stats.records_discarded += 1;
        }
    }
}

/// The message_seq and record sequence number of the first ClientHello fragment in an
/// epoch-0 record of `datagram`.
fn first_client_hello(datagram: &[u8]) -> Option<(u16, u64)> {
    records(datagram)
        .filter(|(h, _)| h.content_type == ContentType::Handshake && h.epoch == 0)
        .find_map(|(record, body)| {
            handshake_fragments(body)
                .map_while(|f| f.ok())
                .find(|(h, _)| h.msg_type == HandshakeType::ClientHello)
                .map(|(h, _)| (h.message_seq, record.sequence))
        })
}

pub(super) fn check_mtu(mtu: usize) -> Result<()> {
    if mtu < MIN_MTU {
        return Err(Error::InvalidArgument(format!(
            "MTU {mtu} is below the minimum of {MIN_MTU}"
        )));
    }
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    //! Cases that need records forged under a peer's epoch-1 keys: the peer engine's own
    //! record layer seals them.

    use super::*;
    use crate::constants::FILETYPE_PEM;
    use crate::{Context, Method};
    use ferrossl_testkit::pki::TestPki;

    fn engines(pki: &TestPki, now: Instant) -> (Engine12, Engine12) {
        engines_with(pki, DtlsParams::default(), DtlsParams::default(), now)
    }

    /// A client and a server (with the test PKI's ECDSA identity) engine.
    fn engines_with(
        pki: &TestPki,
        client: DtlsParams,
        server: DtlsParams,
        now: Instant,
    ) -> (Engine12, Engine12) {
        let server_ctx = Context::new(Method::Dtls);
        server_ctx
            .use_certificate_chain_file(&pki.server_ecdsa.chain_path)
            .unwrap();
        server_ctx
            .use_privatekey_file(&pki.server_ecdsa.key_path, FILETYPE_PEM)
            .unwrap();
        let client_ctx = Context::new(Method::Dtls);
        let c = Engine12::new(client_ctx.config(), Role::Client, client, now).unwrap();
        let s = Engine12::new(server_ctx.config(), Role::Server, server, now).unwrap();
        (c, s)
    }

    fn transfer(from: &mut Engine12, to: &mut Engine12, now: Instant) {
        while let Some(d) = from.poll_datagram() {
            to.handle_datagram(&d, now).unwrap();
        }
    }

    /// A record `content_type` carrying `body`, sealed by `peer` in its current write epoch.
    fn forge(peer: &mut Engine12, content_type: ContentType, body: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let epoch = peer.records.write_epoch();
        peer.records
            .seal(epoch, content_type, body, &mut out)
            .unwrap();
        out
    }

    /// Engines asking for connection IDs `client_cid` and `server_cid` (None: not at all),
    /// through their handshake.
    fn with_cids(
        client_cid: Option<Vec<u8>>,
        server_cid: Option<Vec<u8>>,
        now: Instant,
    ) -> (Engine12, Engine12) {
        let params = |connection_id| DtlsParams {
            connection_id,
            ..DtlsParams::default()
        };
        let pki = TestPki::generate();
        let (mut c, mut s) = engines_with(&pki, params(client_cid), params(server_cid), now);
        for _ in 0..10 {
            transfer(&mut c, &mut s, now);
            transfer(&mut s, &mut c, now);
        }
        assert!(c.is_established() && s.is_established());
        (c, s)
    }

    /// RFC 9146: once both ask, protected records are tls12_cid records carrying the
    /// receiver's CID (type 25, the CID after the 48-bit sequence number), and data flows.
    #[test]
    fn connection_ids_go_into_protected_records_both_ways() {
        let now = Instant::now();
        let (mut c, mut s) = with_cids(Some(vec![1, 2, 3, 4]), Some(vec![9, 9]), now);
        assert_eq!(c.connection_ids(), (&[1, 2, 3, 4][..], &[9, 9][..]));
        assert_eq!(s.connection_ids(), (&[9, 9][..], &[1, 2, 3, 4][..]));
        c.send(b"to the server").unwrap();
        let datagram = c.poll_datagram().unwrap();
        assert_eq!((datagram[0], &datagram[11..13]), (25, &[9, 9][..]));
        s.handle_datagram(&datagram, now).unwrap();
        assert_eq!(s.recv().as_deref(), Some(&b"to the server"[..]));
        s.send(b"to the client").unwrap();
        let datagram = s.poll_datagram().unwrap();
        assert_eq!((datagram[0], &datagram[11..15]), (25, &[1, 2, 3, 4][..]));
        c.handle_datagram(&datagram, now).unwrap();
        assert_eq!(c.recv().as_deref(), Some(&b"to the client"[..]));

        // A record with another CID is not this association's: dropped. So is a protected
        // record without the CID.
        c.send(b"misrouted").unwrap();
        let mut other = c.poll_datagram().unwrap();
        other[11] ^= 0xFF;
        s.handle_datagram(&other, now).unwrap();
        assert_eq!(s.recv(), None);
        let plain = forge_without_cid(&mut c, b"no CID");
        s.handle_datagram(&plain, now).unwrap();
        assert_eq!(s.recv(), None);
    }

    /// An application data record in `peer`'s current epoch, sealed as if no CID had been
    /// negotiated.
    fn forge_without_cid(peer: &mut Engine12, body: &[u8]) -> Vec<u8> {
        let receive = peer.records.receive_cid().to_vec();
        let send = peer.records.send_cid().to_vec();
        peer.records.set_connection_ids(Vec::new(), receive.clone());
        let datagram = forge(peer, ContentType::ApplicationData, body);
        peer.records.set_connection_ids(send, receive);
        datagram
    }

    /// An empty CID asks for none while using the peer's (RFC 9146 §3); a server that does
    /// not want CIDs answers without the extension and records stay as in RFC 6347.
    #[test]
    fn empty_or_refused_connection_ids() {
        let now = Instant::now();
        let (mut c, mut s) = with_cids(Some(Vec::new()), Some(vec![7; 8]), now);
        c.send(b"x").unwrap();
        let datagram = c.poll_datagram().unwrap();
        assert_eq!((datagram[0], &datagram[11..19]), (25, &[7; 8][..]));
        s.handle_datagram(&datagram, now).unwrap();
        s.send(b"y").unwrap();
        let datagram = s.poll_datagram().unwrap();
        assert_eq!(datagram[0], u8::from(ContentType::ApplicationData));
        c.handle_datagram(&datagram, now).unwrap();
        assert_eq!(c.recv().as_deref(), Some(&b"y"[..]));

        let (mut c, _) = with_cids(Some(vec![1]), None, now);
        assert_eq!(c.connection_ids(), (&[][..], &[][..]));
        c.send(b"z").unwrap();
        let datagram = c.poll_datagram().unwrap();
        assert_eq!(datagram[0], u8::from(ContentType::ApplicationData));
    }

    #[test]
    fn engines_move_between_threads() {
        fn send_and_sync<T: Send + Sync>() {}
        send_and_sync::<Engine12>();
    }

    fn handshake_body(msg_type: HandshakeType, message_seq: u16, body: &[u8]) -> Vec<u8> {
        encode_message(msg_type, message_seq, body)
    }

    #[test]
    fn change_cipher_spec_under_the_new_keys_is_fatal() {
        let pki = TestPki::generate();
        let now = Instant::now();
        let (mut c, mut s) = engines(&pki, now);
        transfer(&mut c, &mut s, now);
        transfer(&mut s, &mut c, now);
        // The client's flight without its Finished: the server switched keys and waits.
        let flight: Vec<Vec<u8>> = std::iter::from_fn(|| c.poll_datagram()).collect();
        for d in &flight {
            for (h, body) in records(d) {
                if h.epoch == 0 {
                    let mut one = Vec::new();
                    h.encode(&mut one);
                    one.extend_from_slice(body);
                    s.handle_datagram(&one, now).unwrap();
                }
            }
        }
        assert!(!s.handshake.expects_change_cipher_spec() && !s.is_established());
        let second = forge(&mut c, ContentType::ChangeCipherSpec, &[1]);
        let err = s.handle_datagram(&second, now).unwrap_err();
        assert_eq!(
            err,
            DtlsError::UnexpectedMessage {
                expected: "Finished",
                got: "ChangeCipherSpec".into()
            }
        );
    }

    #[test]
    fn renegotiation_is_refused_with_a_warning_and_the_association_goes_on() {
        let pki = TestPki::generate();
        let now = Instant::now();
        let (mut c, mut s) = engines(&pki, now);
        for _ in 0..3 {
            transfer(&mut c, &mut s, now);
            transfer(&mut s, &mut c, now);
        }
        assert!(c.is_established() && s.is_established());
        let expect_no_renegotiation = |from: &mut Engine12, to: &mut Engine12| {
            let alert = from.poll_datagram().expect("an alert");
            let (h, _) = records(&alert).next().unwrap();
            assert_eq!((h.content_type, h.epoch), (ContentType::Alert, 1));
            let opened = to
                .records
                .open(&h, records(&alert).next().unwrap().1)
                .unwrap();
            assert_eq!(
                opened,
                (
                    ContentType::Alert,
                    vec![1, u8::from(AlertDescription::NoRenegotiation)]
                )
            );
        };
        // The server asks (HelloRequest, message_seq 0 as RFC 6347 §4.2.2 has it).
        let hello_request = forge(
            &mut s,
            ContentType::Handshake,
            &handshake_body(HandshakeType::HelloRequest, 0, &[]),
        );
        c.handle_datagram(&hello_request, now).unwrap();
        expect_no_renegotiation(&mut c, &mut s);
        // The client tries (a new ClientHello under the current keys).
        let seq = s.reassembler.next_seq();
        let hello = forge(
            &mut c,
            ContentType::Handshake,
            &handshake_body(HandshakeType::ClientHello, seq, &[0xFE, 0xFD]),
        );
        s.handle_datagram(&hello, now).unwrap();
        expect_no_renegotiation(&mut s, &mut c);
        c.send(b"after").unwrap();
        transfer(&mut c, &mut s, now);
        assert_eq!(s.recv().unwrap(), b"after");
        assert!(c.is_established() && s.is_established());
    }

    #[test]
    fn protected_fatal_alert_ends_it_and_a_clear_one_does_not() {
        let pki = TestPki::generate();
        let now = Instant::now();
        let (mut c, mut s) = engines(&pki, now);
        for _ in 0..3 {
            transfer(&mut c, &mut s, now);
            transfer(&mut s, &mut c, now);
        }
        let mut clear = Vec::new();
        RecordHeader {
            content_type: ContentType::Alert,
            version: super::super::codec::record::DTLS12,
            epoch: 0,
            sequence: 99,
            length: 2,
        }
        .encode(&mut clear);
        clear.extend_from_slice(&[2, u8::from(AlertDescription::InternalError)]);
        s.handle_datagram(&clear, now).unwrap();
        assert!(s.is_established());
        let sealed = forge(
            &mut c,
            ContentType::Alert,
            &[2, u8::from(AlertDescription::InternalError)],
        );
        assert_eq!(
            s.handle_datagram(&sealed, now),
            Err(DtlsError::AlertReceived(AlertDescription::InternalError))
        );
        assert!(s.poll_datagram().is_none(), "no alert answers an alert");
        assert!(!s.is_established() && s.error().is_some());
    }
}
