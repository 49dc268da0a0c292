//! The DTLS 1.3 engine (RFC 9147): datagrams and time in, datagrams and application data
//! out, like the DTLS 1.2 one. Beneath the handshake it owns what DTLS adds to TLS 1.3:
//! fragment reassembly, ACKs of handshake records (§7), retransmission of what the peer did
//! not acknowledge (§5.8) and the epochs of the record layer ([`super::epochs13`]).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::{AlertDescription, ContentType};

use crate::config::{Config, Role};
use crate::error::{Error, Result};

use super::codec::ack::{encode_ack, read_ack, RecordNumber, ACK_CONTENT_TYPE};
use super::codec::message::ClientHello;
use super::codec::message13::Message13;
use super::codec::record::{handshake_fragments, Alert, AlertLevel, HandshakeHeader};
use super::cookie::{CookieProvider, HmacCookies};
use super::engine::DtlsStats;
use super::epochs13::{Epochs13, Received};
use super::error::DtlsError;
use super::flight::{backed_off_mtu, Fragment, Reassembler, Retransmitter};
use super::flight13::SentFlight;
use super::handshake::{run_servername_callback, SessionInfo};
use super::handshake13::resumption13;
use super::handshake13::{
    protection, ClientState13, Context13, FlightBuilder13, Handshake13, Secrets13, ServerState13,
    Transcript13, APPLICATION_EPOCH, HANDSHAKE_EPOCH,
};
use super::key_schedule::PrfHash;
use super::key_schedule13::Secret;
use super::record::MAX_PLAINTEXT;
use super::sending::{check_send, SealCurrent};
use super::DtlsParams;

/// Application records held while the client's Finished is missing.
const MAX_EARLY_DATA: usize = 64;
/// Datagrams held during the handshake for keys not yet there.
const MAX_EARLY_DATAGRAMS: usize = 32;
/// The highest message_seq a first ClientHello may have.
const MAX_FIRST_HELLO_SEQ: u16 = 32;
/// Records sealed in one epoch after which we update our keys: well below the limits of
/// RFC 9147 §4.5.3 (AES-GCM: 2^24.5 full-size records for confidentiality).
const KEY_UPDATE_AFTER: u64 = 1 << 23;
/// How often the secret of a server's own HelloRetryRequest cookies changes.
const RETRY_COOKIE_ROTATION: Duration = Duration::from_secs(300);

/// One DTLS 1.3 association, client or server.
pub struct Engine13 {
    role: Role,
    config: Arc<Config>,
    params: DtlsParams,
    records: Epochs13,
    transcript: Transcript13,
    flight: FlightBuilder13,
    session: SessionInfo,
    secrets: Option<Secrets13>,
    handshake: Handshake13,
    reassembler: Reassembler,
    retransmitter: Retransmitter<SentFlight>,
    /// The peer's handshake records since our last flight, to acknowledge.
    to_ack: Vec<RecordNumber>,
    /// When to acknowledge a flight that arrived in part (§7.1).
    ack_deadline: Option<Instant>,
    cookies: Arc<dyn CookieProvider>,
    /// The datagram size of handshake flights: the MTU until unanswered retransmissions
    /// shrink it.
    flight_mtu: usize,
    /// How many fragments of the kept flight the peer had acknowledged at the last timer.
    acked_at_timeout: usize,
    /// Server: whether the servername callback has seen the ClientHello.
    servername_ran: bool,
    /// Bytes received since our last flight: a stateless answer may not exceed them (a
    /// ClientHello may come in several datagrams).
    unanswered_bytes: usize,
    early_data: Vec<Vec<u8>>,
    /// Datagrams with records for read keys not yet installed (see `handle_and_keep_early`).
    early_datagrams: Vec<Vec<u8>>,
    outgoing: VecDeque<Vec<u8>>,
    received: VecDeque<Vec<u8>>,
    error: Option<DtlsError>,
    close_sent: bool,
    close_received: bool,
    /// Our KeyUpdate in flight: the secret we switch to once the peer acknowledges it (RFC
    /// 9147 §8: not before, or the peer could not read what follows).
    key_update: Option<Vec<u8>>,
    /// Records sealed in one epoch that make us update our keys.
    key_update_after: u64,
    /// A KeyUpdate (and whether it asks the peer to update too) waiting for the flight in
    /// progress to be acknowledged: one flight at a time (RFC 9147 §5.8).
    key_update_wanted: Option<bool>,
    /// When we last answered a retransmission of the peer's.
    last_answer: Option<Instant>,
    /// The latest time the caller gave, for timers armed by `send`.
    last_now: Instant,
    stats: DtlsStats,
}

impl Engine13 {
    /// Starts an association; a client queues its ClientHello at once, one that offers
    /// DTLS 1.2 as well when `fallback` is the ClientHello of a 1.2 client (see
    /// [`ClientState13::start`]).
    pub fn new(
        config: Arc<Config>,
        role: Role,
        params: DtlsParams,
        now: Instant,
        fallback: Option<ClientHello>,
    ) -> Result<Self> {
        let cookies = match params.cookies.as_ref().or(params.cookie_secret.as_ref()) {
            Some(provider) => provider.clone(),
            None => Arc::new(HmacCookies::new(RETRY_COOKIE_ROTATION)),
        };
        let flight_mtu = params.mtu;
        let mut engine = Self {
            role,
            config,
            params,
            records: Epochs13::default(),
            transcript: Transcript13::default(),
            flight: FlightBuilder13::default(),
            session: SessionInfo::default(),
            secrets: None,
            handshake: Handshake13::Failed,
            reassembler: Reassembler::default(),
            retransmitter: Retransmitter::default(),
            to_ack: Vec::new(),
            ack_deadline: None,
            cookies,
            servername_ran: false,
            acked_at_timeout: 0,
            flight_mtu,
            unanswered_bytes: 0,
            early_data: Vec::new(),
            early_datagrams: Vec::new(),
            outgoing: VecDeque::new(),
            received: VecDeque::new(),
            error: None,
            close_sent: false,
            close_received: false,
            key_update: None,
            key_update_after: KEY_UPDATE_AFTER,
            key_update_wanted: None,
            last_answer: None,
            last_now: now,
            stats: DtlsStats::default(),
        };
        match role {
            Role::Client => {
                engine.advance(now, |_, cx| {
                    ClientState13::start(cx, fallback).map(|s| Handshake13::Client(Box::new(s)))
                })?;
                engine.flush_flight(now)?;
            }
            Role::Server => {
                engine.handshake = Handshake13::Server(Box::new(ServerState13::ExpectClientHello))
            }
        }
        Ok(engine)
    }

    /// Takes one datagram from the peer. Invalid records are dropped silently (RFC 9147
    /// §4.5.2); an error means the association failed.
    pub fn handle_datagram(
        &mut self,
        datagram: &[u8],
        now: Instant,
    ) -> std::result::Result<(), DtlsError> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        self.unanswered_bytes = self.unanswered_bytes.saturating_add(datagram.len());
        self.last_now = now;
        self.handle_and_keep_early(datagram, now)
            .map_err(|e| self.fail(e))
    }

    /// Handles `datagram`; during the handshake, one with records that no key of ours opens
    /// yet (they overtook the ServerHello, or the Finished that brings the next keys) is kept,
    /// and every datagram kept goes through again once new read keys arrive, so that a lost
    /// and resent ServerHello does not also cost the rest of the flight (RFC 9147 §4.5.2
    /// lets a receiver buffer records of a future epoch).
    fn handle_and_keep_early(
        &mut self,
        datagram: &[u8],
        now: Instant,
    ) -> std::result::Result<(), DtlsError> {
        let epoch = self.records.read_epoch();
        let discarded = self.stats.records_discarded;
        self.handle_records(datagram, now)?;
        if self.handshake.is_established() {
            self.early_datagrams.clear();
            return Ok(());
        }
        if self.records.read_epoch() == epoch {
            if self.stats.records_discarded > discarded
                && self.early_datagrams.len() < MAX_EARLY_DATAGRAMS
            {
                self.early_datagrams.push(datagram.to_vec());
            }
            return Ok(());
        }
        for early in std::mem::take(&mut self.early_datagrams) {
            self.handle_and_keep_early(&early, now)?;
        }
        Ok(())
    }

    fn handle_records(
        &mut self,
        datagram: &[u8],
        now: Instant,
    ) -> std::result::Result<(), DtlsError> {
        let mut rest = datagram;
        let mut retransmitted = false;
        while let Some(record) = self
            .records
            .open_next(&mut rest, &mut self.stats.records_discarded)?
        {
            if self.close_received {
                break;
            }
            match record.content_type {
                ContentType::Handshake => {
                    retransmitted |= self.take_handshake_record(&record);
                    // Before the next record: this one may bring its keys.
                    self.process_messages(now)?;
                }
                ContentType::Alert => self.handle_alert(&record)?,
                ContentType::ApplicationData => self.handle_application_data(record),
                t if u8::from(t) == ACK_CONTENT_TYPE => self.handle_ack(&record)?,
                _ => self.stats.records_discarded += 1,
            }
        }
        if retransmitted {
            self.answer_retransmission(now)?;
        }
        if !self.to_ack.is_empty() && self.ack_deadline.is_none() {
            // Part of a flight: acknowledge it unless the rest comes soon (§7.1).
            self.ack_deadline = Some(now + self.params.retransmit.initial / 4);
        }
        Ok(())
    }

    /// Puts a record's fragments into the reassembler. Returns whether it repeated
    /// messages already processed (the peer retransmits: it lacks our answer or our ACK).
    fn take_handshake_record(&mut self, record: &Received) -> bool {
        let epoch = u16::try_from(record.epoch).unwrap_or(u16::MAX);
        let mut old = false;
        let mut useful = false;
        for fragment in handshake_fragments(&record.content) {
            let Ok((header, body)) = fragment else {
                break;
            };
            self.adopt_hello_seq(record, &header);
            if self.unprotected_after_keys(record.epoch)
                && header.message_seq >= self.reassembler.next_seq()
            {
                // Once handshake keys exist, the clear can only repeat what came before:
                // a new message there is forged.
                continue;
            }
            match self.reassembler.insert(epoch, &header, body) {
                Fragment::Accepted => useful = true,
                Fragment::Old => {
                    useful = true;
                    // The end of the peer's last flight: it is sending that flight again
                    // (once per retransmission, however many records it takes).
                    old |= u32::from(header.message_seq) + 1
                        == u32::from(self.reassembler.next_seq())
                        && header.is_last_fragment();
                }
                Fragment::Dropped => {}
            }
        }
        if useful {
            self.to_ack.push(RecordNumber {
                epoch: record.epoch,
                sequence: record.sequence,
            });
        } else {
            self.stats.records_discarded += 1;
        }
        old
    }

    /// Whether a record of `epoch` came in the clear although the peer's handshake keys are
    /// in place: it can only be a late repeat, or forged (anyone can write plaintext).
    fn unprotected_after_keys(&self, epoch: u64) -> bool {
        epoch == 0 && self.records.read_epoch() >= HANDSHAKE_EPOCH
    }

    /// A server waiting for a ClientHello keeps no state, so each one numbers the messages
    /// and records that answer it (RFC 9147 §5.1: the HelloRetryRequest repeats the
    /// ClientHello's record number). The ServerHello after a stateless retry thus goes out
    /// under a higher record number than the retry did, whoever sent that.
    fn adopt_hello_seq(&mut self, record: &Received, header: &HandshakeHeader) {
        let awaiting = matches!(&self.handshake, Handshake13::Server(s) if matches!(**s, ServerState13::ExpectClientHello));
        if !awaiting
            || record.epoch != 0
            || header.msg_type != rustls::HandshakeType::ClientHello
            || header.message_seq > MAX_FIRST_HELLO_SEQ
        {
            return;
        }
        if header.message_seq != self.reassembler.next_seq() {
            self.reassembler.restart_at(header.message_seq);
        }
        if header.fragment_offset == 0 {
            self.records.set_plaintext_write_sequence(record.sequence);
        }
    }

    /// Hands every complete message to the handshake, in order, and sends what it answers.
    fn process_messages(&mut self, now: Instant) -> std::result::Result<(), DtlsError> {
        while let Some(assembled) = self.reassembler.pop() {
            let message = Message13::read(assembled.msg_type, &assembled.body)?;
            let epoch = u64::from(assembled.epoch);
            if self.handshake.is_established() {
                self.handle_post_handshake(&message, epoch, now)?;
                continue;
            }
            if let Message13::ClientHello(hello) = &message {
                self.flight.set_next_message_seq(assembled.message_seq);
                if !self.servername_ran {
                    // Once per handshake: a second ClientHello answers our retry.
                    self.servername_ran = true;
                    run_servername_callback(hello, &mut self.config, &mut self.params)?;
                }
            }
            self.advance(now, |h, cx| h.handle(message, &assembled.body, epoch, cx))?;
            self.flush_flight(now)?;
            if self.handshake.is_established() {
                self.on_established(now)?;
            }
        }
        Ok(())
    }

    fn on_established(&mut self, now: Instant) -> std::result::Result<(), DtlsError> {
        if self.role == Role::Server {
            // The client's last flight has no answer but this (§7.1).
            self.send_ack();
            self.retransmitter.clear();
            self.records.retire_write_before(APPLICATION_EPOCH);
            self.send_ticket(now)?;
        }
        for data in std::mem::take(&mut self.early_data) {
            self.received.push_back(data);
        }
        Ok(())
    }

    /// The wall-clock time in seconds, for tickets.
    fn now_secs(&self) -> u64 {
        (self.params.wall_clock)().as_secs()
    }

    /// Server: a NewSessionTicket for resuming this session (RFC 8446 §4.6.1), delivered
    /// reliably like any post-handshake message.
    fn send_ticket(&mut self, now: Instant) -> std::result::Result<(), DtlsError> {
        let secrets = self.secrets.as_ref().expect("established");
        let server_name = self
            .session
            .server_name
            .as_deref()
            .map(|n| n.as_bytes().to_vec())
            .unwrap_or_default();
        let Some(ticket) = resumption13::issue(
            &self.config,
            secrets.suite,
            &secrets.resumption,
            &server_name,
            self.session.peer_chain_der(),
            self.now_secs(),
        ) else {
            return Ok(());
        };
        let epoch = self.records.write_epoch();
        self.flight
            .post_handshake(epoch, &Message13::NewSessionTicket(ticket))?;
        self.flush_flight(now)
    }

    /// Post-handshake messages (RFC 8446 §4.6), each acknowledged: a client keeps tickets in
    /// its session for a later resumption.
    fn handle_post_handshake(
        &mut self,
        message: &Message13,
        epoch: u64,
        now: Instant,
    ) -> std::result::Result<(), DtlsError> {
        if epoch < APPLICATION_EPOCH {
            // A retransmission of a handshake message after the end.
            return Ok(());
        }
        let update_ours = match message {
            Message13::NewSessionTicket(ticket) if self.role == Role::Client => {
                let secrets = self.secrets.as_ref().expect("established");
                resumption13::store(
                    &self.params,
                    &self.config,
                    ticket,
                    secrets.suite,
                    &secrets.resumption,
                    self.session.peer_chain_der(),
                    self.now_secs(),
                );
                false
            }
            Message13::KeyUpdate(request) => self.handle_key_update(*request, epoch)?,
            other => {
                return Err(DtlsError::UnexpectedMessage {
                    expected: self.handshake.expects(),
                    got: format!("{:?}", other.msg_type()),
                })
            }
        };
        // Acknowledged before our own KeyUpdate goes out, which starts a flight of its own.
        self.send_ack();
        if update_ours {
            self.start_key_update(false, now)?;
        }
        Ok(())
    }

    /// The peer's KeyUpdate (RFC 8446 §4.6.3, RFC 9147 §8): its records after this one use
    /// the next epoch, under the next generation of its secret. Returns whether we must
    /// update ours (asked to, and not doing so already).
    fn handle_key_update(
        &mut self,
        request: bool,
        epoch: u64,
    ) -> std::result::Result<bool, DtlsError> {
        if epoch != self.records.read_epoch() {
            return Ok(false);
        }
        let secrets = self.secrets.as_mut().expect("established");
        let peer = match self.role {
            Role::Client => &mut secrets.application.server,
            Role::Server => &mut secrets.application.client,
        };
        *peer = Secret::new(PrfHash::of(secrets.suite), peer).next_generation();
        self.records
            .install_read(protection(epoch + 1, secrets.suite, peer)?);
        Ok(request && self.key_update.is_none() && self.key_update_wanted.is_none())
    }

    /// Sends a KeyUpdate (`SSL_key_update`); `request_peer` asks the peer to update its keys
    /// too. Ours change once the peer acknowledges it.
    pub fn key_update(&mut self, request_peer: bool, now: Instant) -> Result<()> {
        if !self.handshake.is_established() || self.error.is_some() {
            return Err(Error::WrongState(
                "a KeyUpdate needs an established association",
            ));
        }
        if self.key_update.is_some() || self.key_update_wanted.is_some() {
            return Err(Error::WrongState("a KeyUpdate is already in flight"));
        }
        self.start_key_update(request_peer, now)
            .map_err(|e| Error::from(self.fail(e)))
    }

    fn start_key_update(
        &mut self,
        request: bool,
        now: Instant,
    ) -> std::result::Result<(), DtlsError> {
        if self.retransmitter.flight().is_some_and(|f| !f.all_acked()) {
            // A flight of ours is still on its way (our Finished, a ticket): it goes first.
            self.key_update_wanted = Some(request);
            return Ok(());
        }
        let secrets = self.secrets.as_ref().expect("established");
        let (ours, _) = secrets.application.split(self.role);
        self.key_update = Some(Secret::new(PrfHash::of(secrets.suite), ours).next_generation());
        let epoch = self.records.write_epoch();
        self.flight
            .post_handshake(epoch, &Message13::KeyUpdate(request))?;
        self.flush_flight(now)
    }

    /// The peer acknowledged our KeyUpdate: send under the next epoch from now on.
    fn finish_key_update(&mut self) -> std::result::Result<(), DtlsError> {
        let Some(next) = self.key_update.take() else {
            return Ok(());
        };
        let secrets = self.secrets.as_mut().expect("established");
        let epoch = self.records.write_epoch() + 1;
        self.records
            .install_write(protection(epoch, secrets.suite, &next)?);
        match self.role {
            Role::Client => secrets.application.client = next,
            Role::Server => secrets.application.server = next,
        }
        self.records.retire_write_before(epoch);
        Ok(())
    }

    /// The peer repeated messages we processed: our answer or our ACK was lost. Acknowledge
    /// again, and resend what the peer did not acknowledge of ours.
    fn answer_retransmission(&mut self, now: Instant) -> std::result::Result<(), DtlsError> {
        // At most once per half retransmission timeout: a peer retransmits no faster, and a
        // forger of repeats (small records in the clear) gets no stream of big answers.
        let gap = self.params.retransmit.initial / 2;
        if self.last_answer.is_some_and(|t| now < t + gap) {
            return Ok(());
        }
        self.last_answer = Some(now);
        self.send_ack();
        let unacked = self.retransmitter.flight().is_some_and(|f| !f.all_acked());
        if unacked {
            self.resend_flight()?;
        }
        Ok(())
    }

    fn handle_ack(&mut self, record: &Received) -> std::result::Result<(), DtlsError> {
        let Ok(mut acked) = read_ack(&record.content) else {
            self.stats.records_discarded += 1;
            return Ok(());
        };
        // RFC 9147 §7: an ACK speaks only of records of its own epoch or older; one in the
        // clear can thus not stop what went out under keys.
        acked.retain(|r| r.epoch <= record.epoch);
        let Some(flight) = self.retransmitter.flight_mut() else {
            return Ok(());
        };
        flight.acknowledge(&acked);
        if !flight.all_acked() {
            return Ok(());
        }
        // §7.1: a fully acknowledged flight is not retransmitted.
        if !self.handshake.is_established() {
            self.retransmitter.stop_timer();
            return Ok(());
        }
        self.retransmitter.clear();
        self.records.retire_write_before(APPLICATION_EPOCH);
        self.finish_key_update()?;
        match self.key_update_wanted.take() {
            Some(request) => self.start_key_update(request, self.last_now),
            None => Ok(()),
        }
    }

    fn handle_alert(&mut self, record: &Received) -> std::result::Result<(), DtlsError> {
        let alert = Alert::read(&record.content)
            .ok()
            .filter(|_| !self.unprotected_after_keys(record.epoch));
        let Some(alert) = alert else {
            // Malformed, or in the clear once keys exist: unauthenticated, so it cannot end
            // the association.
            self.stats.records_discarded += 1;
            return Ok(());
        };
        if alert.description == AlertDescription::CloseNotify {
            self.close_received = true;
            return Ok(());
        }
        match alert.level {
            AlertLevel::Fatal => Err(DtlsError::AlertReceived(alert.description)),
            AlertLevel::Warning => Ok(()),
        }
    }

    fn handle_application_data(&mut self, record: Received) {
        if record.epoch < APPLICATION_EPOCH {
            self.stats.records_discarded += 1;
        } else if self.handshake.is_established() {
            self.received.push_back(record.content);
        } else if self.early_data.len() < MAX_EARLY_DATA {
            // It overtook the client's Finished.
            self.early_data.push(record.content);
        } else {
            self.stats.records_discarded += 1;
        }
    }

    /// Runs one handshake step with the engine's parts lent out as a [`Context13`].
    fn advance(
        &mut self,
        now: Instant,
        step: impl FnOnce(
            Handshake13,
            &mut Context13<'_>,
        ) -> std::result::Result<Handshake13, DtlsError>,
    ) -> std::result::Result<(), DtlsError> {
        let handshake = std::mem::replace(&mut self.handshake, Handshake13::Failed);
        let mut cx = Context13 {
            role: self.role,
            config: &self.config,
            params: &self.params,
            transcript: &mut self.transcript,
            flight: &mut self.flight,
            records: &mut self.records,
            session: &mut self.session,
            secrets: &mut self.secrets,
            cookies: self.cookies.as_ref(),
            now,
        };
        self.handshake = step(handshake, &mut cx)?;
        Ok(())
    }

    /// Sends the flight the handshake just completed: it answers (so acknowledges) the
    /// peer's, and is kept for retransmission unless it was a stateless answer.
    fn flush_flight(&mut self, now: Instant) -> std::result::Result<(), DtlsError> {
        let Some((messages, keep)) = self.flight.take() else {
            return Ok(());
        };
        self.to_ack.clear();
        self.ack_deadline = None;
        let mut sent = SentFlight::new(messages, self.flight_mtu, &self.records);
        let datagrams = sent.pack(self.flight_mtu, &mut self.records)?;
        if !keep {
            // A stateless HelloRetryRequest: never more bytes than came in (§5.1).
            let size: usize = datagrams.iter().map(Vec::len).sum();
            if size > self.unanswered_bytes {
                self.stats.records_discarded += 1;
                return Ok(());
            }
        }
        self.unanswered_bytes = 0;
        for datagram in datagrams {
            self.queue(datagram);
        }
        if keep {
            self.acked_at_timeout = 0;
            self.retransmitter
                .start(sent, true, &self.params.retransmit, now);
        } else {
            self.retransmitter.clear();
        }
        Ok(())
    }

    /// Unanswered retransmissions may mean the path drops datagrams this big (RFC 9147 §4.4):
    /// the flight's datagrams shrink, but only while ACKs show no progress since the last
    /// timer (random loss lets some records through, and smaller datagrams would only be
    /// more of them to lose).
    fn back_off_flight_mtu(&mut self) {
        let acked = self
            .retransmitter
            .flight_mut()
            .map_or(0, |f| f.acked_count());
        let progress = acked > self.acked_at_timeout;
        self.acked_at_timeout = acked;
        if !progress {
            self.flight_mtu = backed_off_mtu(
                self.flight_mtu,
                self.params.mtu,
                self.retransmitter.retransmissions(),
            );
        }
    }

    /// Sends again what the peer did not acknowledge of the kept flight.
    fn resend_flight(&mut self) -> std::result::Result<(), DtlsError> {
        let mtu = self.flight_mtu;
        let Some(flight) = self.retransmitter.flight_mut() else {
            return Ok(());
        };
        flight.cut_to(mtu, &self.records);
        let datagrams = flight.pack(mtu, &mut self.records)?;
        self.stats.retransmissions += 1;
        for datagram in datagrams {
            self.queue(datagram);
        }
        Ok(())
    }

    /// Acknowledges the peer's handshake records received since our last flight or ACK (the
    /// sender marks what each ACK names, so one ACK need not repeat another).
    fn send_ack(&mut self) {
        self.ack_deadline = None;
        let epoch = self.records.write_epoch();
        // Each RecordNumber takes 16 bytes after the list's 2-byte length: as many ACKs as
        // the path MTU needs (§7: every record must be acknowledged).
        let room = self
            .params
            .mtu
            .saturating_sub(self.records.overhead(epoch) + 2);
        let per_ack = (room / 16).max(1);
        for numbers in std::mem::take(&mut self.to_ack).chunks(per_ack) {
            let mut body = Vec::new();
            encode_ack(numbers, &mut body);
            let mut datagram = Vec::new();
            let ack = ContentType::from(ACK_CONTENT_TYPE);
            if self.records.seal(epoch, ack, &body, &mut datagram).is_ok() {
                self.queue(datagram);
            }
        }
    }

    /// When [`Engine13::handle_timeout`] must be called.
    pub fn next_timeout(&self) -> Option<Instant> {
        match (self.retransmitter.deadline(), self.ack_deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Lets time pass: a delayed ACK goes out; a flight whose answer is overdue goes out
    /// again (what was not acknowledged of it), with the timeout doubled.
    pub fn handle_timeout(&mut self, now: Instant) -> std::result::Result<(), DtlsError> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        self.last_now = now;
        if self.ack_deadline.is_some_and(|d| now >= d) {
            self.send_ack();
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

    /// The next datagram to send.
    pub fn poll_datagram(&mut self) -> Option<Vec<u8>> {
        self.outgoing.pop_front()
    }

    /// The next application datagram received.
    pub fn recv(&mut self) -> Option<Vec<u8>> {
        self.received.pop_front()
    }

    /// Whether an application datagram received waits for [`recv`](Self::recv).
    pub fn has_received(&self) -> bool {
        !self.received.is_empty()
    }

    /// Sends `data` as one application-data record in one datagram.
    pub fn send(&mut self, data: &[u8]) -> Result<()> {
        check_send(
            self.error.as_ref(),
            self.handshake.is_established(),
            self.close_sent,
            data.len(),
            MAX_PLAINTEXT,
        )?;
        let mut datagram = Vec::new();
        let epoch = self.records.write_epoch();
        let sequence = self
            .records
            .seal(epoch, ContentType::ApplicationData, data, &mut datagram)
            .map_err(|e| Error::from(self.fail(e)))?;
        self.queue(datagram);
        if sequence >= self.key_update_after && self.key_update.is_none() {
            // The AEAD limits of RFC 9147 §4.5.3 come before the sequence numbers run out.
            let now = self.last_now;
            self.start_key_update(false, now)
                .map_err(|e| Error::from(self.fail(e)))?;
        }
        Ok(())
    }

    /// Queues a close_notify alert (once).
    pub fn close(&mut self) -> Result<()> {
        if self.close_sent || self.error.is_some() {
            return Ok(());
        }
        self.close_sent = true;
        self.send_alert(AlertLevel::Warning, AlertDescription::CloseNotify)
            .map_err(|e| Error::from(self.fail(e)))
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
            let _ = self.send_alert(AlertLevel::Fatal, alert);
        }
        self.error = Some(e.clone());
        self.handshake = Handshake13::Failed;
        self.retransmitter.clear();
        self.ack_deadline = None;
        e
    }

    fn queue(&mut self, datagram: Vec<u8>) {
        self.stats.datagrams_sent += 1;
        self.outgoing.push_back(datagram);
    }

    /// Client: the ClientHello sent, while the ServerHello is still to come.
    pub fn sent_hello(&self) -> Option<ClientHello> {
        match &self.handshake {
            Handshake13::Client(s) => s.sent_hello().cloned(),
            _ => None,
        }
    }

    /// The number our next epoch-0 record would get.
    pub fn next_plaintext_sequence(&self) -> u64 {
        self.records.next_plaintext_sequence()
    }

    /// Whether a record handled since the last call carried our connection ID and a record
    /// number above all before it; clears it.
    pub fn take_newest_with_cid(&mut self) -> bool {
        self.records.take_newest_with_cid()
    }

    /// The connection IDs in use (RFC 9147 §9): the one the peer's records carry to us, and
    /// the one ours carry to the peer; empty where none.
    pub fn connection_ids(&self) -> (&[u8], &[u8]) {
        self.records.connection_ids()
    }

    /// What the handshake negotiated.
    pub fn session(&self) -> &SessionInfo {
        &self.session
    }

    /// Our role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The cookies of our HelloRetryRequests, and the peer's address they are bound to.
    pub fn retry_cookies(&self) -> (Arc<dyn CookieProvider>, Option<std::net::SocketAddr>) {
        (self.cookies.clone(), self.params.peer_addr)
    }

    /// Server: sends a stateless answer to a datagram the association does not take (a
    /// HelloRetryRequest to a restarting client).
    pub fn send_stateless(&mut self, datagram: Vec<u8>) {
        self.queue(datagram);
    }

    /// Ends the association with `e` (a restarted peer), sending the alert it calls for.
    pub fn end(&mut self, e: DtlsError) -> DtlsError {
        self.fail(e)
    }

    /// Whether the handshake finished.
    pub fn handshake_done(&self) -> bool {
        self.handshake.is_established()
    }

    /// The failure that ended the association, if any.
    pub fn error(&self) -> Option<&DtlsError> {
        self.error.as_ref()
    }

    /// Whether we sent close_notify.
    pub fn close_sent(&self) -> bool {
        self.close_sent
    }

    /// Whether the peer sent close_notify.
    pub fn peer_closed(&self) -> bool {
        self.close_received
    }

    /// TLS 1.3's exporter (RFC 8446 §7.5); no context and an empty one are the same.
    pub fn export_keying_material(
        &self,
        label: &[u8],
        len: usize,
        context: Option<&[u8]>,
    ) -> Result<Vec<u8>> {
        let secrets = self.secrets.as_ref().ok_or(Error::WrongState(
            "keying material exists once the handshake finished",
        ))?;
        Secret::new(PrfHash::of(secrets.suite), &secrets.exporter)
            .export(label, context.unwrap_or_default(), len)
            .ok_or_else(|| Error::InvalidArgument("exporter label or length too long".into()))
    }

    /// Changes the datagram size limit for flights sent from now on.
    pub fn set_mtu(&mut self, mtu: usize) {
        self.params.mtu = mtu;
        self.flight_mtu = mtu;
    }

    /// The datagram size limit.
    pub fn mtu(&self) -> usize {
        self.params.mtu
    }

    /// The most application data one datagram can carry.
    pub fn cleartext_mtu(&self) -> usize {
        let overhead = self
            .records
            .overhead(self.records.write_epoch().max(APPLICATION_EPOCH));
        self.params.mtu.saturating_sub(overhead).min(MAX_PLAINTEXT)
    }

    /// Counters.
    pub fn stats(&self) -> DtlsStats {
        self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::constants::{DTLS1_3_VERSION, FILETYPE_PEM, VERIFY_PEER};
    use crate::dtls::codec::record::RECORD_HEADER_LEN;
    use crate::dtls::epochs13::Epochs13;
    use crate::dtls::CookieProvider;
    use crate::dtls::DtlsEngine;
    use crate::{Context, Method};
    use ferrossl_testkit::pki::TestPki;
    use rustls::HandshakeType;

    fn context13(pki: &TestPki, server: bool) -> Context {
        let ctx = Context::new(Method::Dtls);
        if !server {
            // Our tests of DTLS 1.3 itself: nothing to fall back to.
            ctx.set_min_proto_version(DTLS1_3_VERSION).unwrap();
        }
        if server {
            ctx.use_certificate_chain_file(&pki.server_ecdsa.chain_path)
                .unwrap();
            ctx.use_privatekey_file(&pki.server_ecdsa.key_path, FILETYPE_PEM)
                .unwrap();
        }
        ctx
    }

    fn engines(pki: &TestPki, client: DtlsParams, server: DtlsParams) -> (DtlsEngine, DtlsEngine) {
        let now = Instant::now();
        let c = DtlsEngine::new(context13(pki, false).config(), Role::Client, client, now).unwrap();
        let s = DtlsEngine::new(context13(pki, true).config(), Role::Server, server, now).unwrap();
        (c, s)
    }

    /// Moves datagrams both ways until neither side has any; returns how many moved.
    fn exchange(c: &mut DtlsEngine, s: &mut DtlsEngine, now: Instant) -> usize {
        let mut moved = 0;
        for _ in 0..20 {
            let mut any = false;
            while let Some(d) = c.poll_datagram() {
                s.handle_datagram(&d, now).unwrap();
                any = true;
                moved += 1;
            }
            while let Some(d) = s.poll_datagram() {
                c.handle_datagram(&d, now).unwrap();
                any = true;
                moved += 1;
            }
            if !any {
                break;
            }
        }
        moved
    }

    #[test]
    fn full_handshake_with_a_retry_for_the_hybrid_group_then_data_both_ways() {
        let pki = TestPki::generate();
        let (mut c, mut s) = engines(&pki, DtlsParams::default(), DtlsParams::default());
        exchange(&mut c, &mut s, Instant::now());
        assert!(c.is_established() && s.is_established());
        assert_eq!(c.protocol_version(), Some(DTLS1_3_VERSION));
        assert_eq!(s.protocol_version(), Some(DTLS1_3_VERSION));
        assert_eq!(c.group(), Some(rustls::NamedGroup::X25519MLKEM768));
        assert_eq!(c.cipher().map(|c| c.tls13), Some(true));
        c.send(b"ping").unwrap();
        s.send(b"pong").unwrap();
        exchange(&mut c, &mut s, Instant::now());
        assert_eq!(s.recv().as_deref(), Some(&b"ping"[..]));
        assert_eq!(c.recv().as_deref(), Some(&b"pong"[..]));
        let label = b"EXTRACTOR-dtls_srtp";
        assert_eq!(
            c.export_keying_material(label, 60, None).unwrap(),
            s.export_keying_material(label, 60, None).unwrap()
        );
        assert_eq!(c.peer_finished(), s.finished());
        // The server's ACK of the client's Finished stopped the client's timer.
        assert_eq!(c.next_timeout(), None);
        assert_eq!(s.next_timeout(), None);
    }

    #[test]
    fn client_authentication_and_the_classic_group_without_retry() {
        let pki = TestPki::generate();
        let now = Instant::now();
        let client_ctx = context13(&pki, false);
        client_ctx
            .use_certificate_chain_file(&pki.client_rsa.chain_path)
            .unwrap();
        client_ctx
            .use_privatekey_file(&pki.client_rsa.key_path, FILETYPE_PEM)
            .unwrap();
        client_ctx.set_groups(&["X25519"]).unwrap();
        let server_ctx = context13(&pki, true);
        server_ctx.set_verify(VERIFY_PEER, None);
        server_ctx
            .load_verify_locations(Some(&pki.ca.cert_path), None)
            .unwrap();
        let mut c = DtlsEngine::new(
            client_ctx.config(),
            Role::Client,
            DtlsParams::default(),
            now,
        )
        .unwrap();
        let mut s = DtlsEngine::new(
            server_ctx.config(),
            Role::Server,
            DtlsParams::default(),
            now,
        )
        .unwrap();
        // ClientHello, the server's flight, the client's flight, the server's ACK, its
        // NewSessionTicket and the client's ACK of that: no retry.
        assert_eq!(exchange(&mut c, &mut s, now), 6);
        assert!(c.is_established() && s.is_established());
        assert!(s.verify_outcome().unwrap().accepted);
        assert_eq!(s.peer_certificates()[0].to_der(), pki.client_rsa.cert_der);
        assert_eq!(c.group(), Some(rustls::NamedGroup::X25519));
    }

    #[test]
    fn key_update_both_ways_with_data_after_it() {
        let pki = TestPki::generate();
        let now = Instant::now();
        let (mut c, mut s) = engines(&pki, DtlsParams::default(), DtlsParams::default());
        exchange(&mut c, &mut s, now);
        // The client asks the server to update too (RFC 8446 §4.6.3).
        c.key_update(true, now).unwrap();
        assert!(c.key_update(false, now).is_err(), "one KeyUpdate at a time");
        exchange(&mut c, &mut s, now);
        // Epoch 4's low bits: both sides send in the next epoch now.
        let one_way = |from: &mut DtlsEngine, to: &mut DtlsEngine, text: &[u8], bits: u8| {
            from.send(text).unwrap();
            let datagram = from.poll_datagram().unwrap();
            assert_eq!(datagram[0] & 3, bits);
            to.handle_datagram(&datagram, now).unwrap();
            assert_eq!(to.recv().as_deref(), Some(text));
        };
        one_way(&mut c, &mut s, b"after c", 0);
        one_way(&mut s, &mut c, b"after s", 0);
        assert_eq!(c.next_timeout(), None);
        assert_eq!(s.next_timeout(), None);
        // A second update, from the server alone.
        s.key_update(false, now).unwrap();
        exchange(&mut c, &mut s, now);
        one_way(&mut s, &mut c, b"epoch 5", 1);
        one_way(&mut c, &mut s, b"still epoch 4", 0);
    }

    /// Two DTLS 1.3 engines, unwrapped (tests below forge records with their keys).
    fn raw_engines(pki: &TestPki, now: Instant) -> (Engine13, Engine13) {
        let c = Engine13::new(
            context13(pki, false).config(),
            Role::Client,
            DtlsParams::default(),
            now,
            None,
        )
        .unwrap();
        let s = Engine13::new(
            context13(pki, true).config(),
            Role::Server,
            DtlsParams::default(),
            now,
            None,
        )
        .unwrap();
        (c, s)
    }

    fn pass(
        from: &mut Engine13,
        to: &mut Engine13,
        now: Instant,
    ) -> std::result::Result<(), DtlsError> {
        while let Some(d) = from.poll_datagram() {
            to.handle_datagram(&d, now)?;
        }
        Ok(())
    }

    /// Two raw engines two round trips in (ClientHello, retry, ClientHello, the server's
    /// flight): the client's last flight is queued, the server waits for it.
    fn engines_awaiting_the_client_finished(pki: &TestPki, now: Instant) -> (Engine13, Engine13) {
        let (mut c, mut s) = raw_engines(pki, now);
        for _ in 0..2 {
            pass(&mut c, &mut s, now).unwrap();
            pass(&mut s, &mut c, now).unwrap();
        }
        (c, s)
    }

    /// A handshake message in one record of `from`'s `epoch`.
    fn forge(
        from: &mut Engine13,
        epoch: u64,
        msg_type: HandshakeType,
        seq: u16,
        body: &[u8],
    ) -> Vec<u8> {
        let mut content = Vec::new();
        HandshakeHeader {
            msg_type,
            length: body.len() as u32,
            message_seq: seq,
            fragment_offset: 0,
            fragment_length: body.len() as u32,
        }
        .encode(&mut content);
        content.extend_from_slice(body);
        let mut datagram = Vec::new();
        from.records
            .seal(epoch, ContentType::Handshake, &content, &mut datagram)
            .unwrap();
        datagram
    }

    #[test]
    fn automatic_key_update_before_the_aead_limit() {
        let pki = TestPki::generate();
        let now = Instant::now();
        let (mut c, mut s) = raw_engines(&pki, now);
        for _ in 0..3 {
            pass(&mut c, &mut s, now).unwrap();
            pass(&mut s, &mut c, now).unwrap();
        }
        c.key_update_after = 3;
        for i in 0..6u8 {
            c.send(&[i]).unwrap();
            pass(&mut c, &mut s, now).unwrap();
            pass(&mut s, &mut c, now).unwrap();
        }
        assert_eq!(
            c.records.write_epoch(),
            4,
            "updated once the limit was reached"
        );
        let got: Vec<Vec<u8>> = std::iter::from_fn(|| s.recv()).collect();
        assert_eq!(got, (0..6u8).map(|i| vec![i]).collect::<Vec<_>>());
    }

    /// RFC 9147 §4.5.2: records of an epoch without keys, records with a connection ID none
    /// was negotiated for, and garbage are dropped, not fatal; an ACK for records never sent
    /// changes nothing.
    #[test]
    fn invalid_records_are_dropped_silently() {
        let pki = TestPki::generate();
        let now = Instant::now();
        let (mut c, mut s) = raw_engines(&pki, now);
        pass(&mut c, &mut s, now).unwrap();
        // A protected record of epoch 3 before any keys, one with the CID bit, junk.
        for junk in [
            &[
                0x2F, 0, 1, 0, 17, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17,
            ][..],
            &[0x3F, 9, 9, 0, 1, 0, 17][..],
            &[0xFF; 40][..],
        ] {
            c.handle_datagram(junk, now).unwrap();
        }
        assert_eq!(c.stats().records_discarded, 3);
        pass(&mut s, &mut c, now).unwrap();
        pass(&mut c, &mut s, now).unwrap();
        // An ACK of records the client never sent.
        let mut ack = Vec::new();
        encode_ack(
            &[RecordNumber {
                epoch: 2,
                sequence: 99,
            }],
            &mut ack,
        );
        let mut datagram = Vec::new();
        s.records
            .seal(2, ContentType::from(ACK_CONTENT_TYPE), &ack, &mut datagram)
            .unwrap();
        c.handle_datagram(&datagram, now).unwrap();
        assert!(c.retransmitter.flight().is_some_and(|f| !f.all_acked()));
        pass(&mut s, &mut c, now).unwrap();
        pass(&mut c, &mut s, now).unwrap();
        assert!(c.handshake_done() && s.handshake_done());
    }

    #[test]
    fn a_second_hello_retry_request_is_fatal() {
        let pki = TestPki::generate();
        let now = Instant::now();
        let (mut c, mut s) = raw_engines(&pki, now);
        pass(&mut c, &mut s, now).unwrap();
        let retry = s.poll_datagram().unwrap();
        c.handle_datagram(&retry, now).unwrap();
        // The same retry again, renumbered as the answer to the second ClientHello.
        let mut second = retry.clone();
        second[10] = 1; // record sequence number
        second[RECORD_HEADER_LEN + 5] = 1; // message_seq
        let err = c.handle_datagram(&second, now).unwrap_err();
        assert!(matches!(err, DtlsError::UnexpectedMessage { .. }), "{err}");
    }

    #[test]
    fn key_update_before_the_handshake_ends_is_fatal() {
        let pki = TestPki::generate();
        let now = Instant::now();
        let (mut c, mut s) = engines_awaiting_the_client_finished(&pki, now);
        // The server waits for the client's Finished; a KeyUpdate under the handshake keys
        // comes instead.
        assert!(!s.handshake_done());
        let update = forge(&mut c, 2, HandshakeType::KeyUpdate, 2, &[0]);
        let err = s.handle_datagram(&update, now).unwrap_err();
        assert!(matches!(err, DtlsError::UnexpectedMessage { .. }), "{err}");
    }

    #[test]
    fn a_finished_over_another_transcript_is_a_decrypt_error() {
        let pki = TestPki::generate();
        let now = Instant::now();
        let (mut c, mut s) = engines_awaiting_the_client_finished(&pki, now);
        while c.poll_datagram().is_some() {}
        let suite_hash_len = PrfHash::of(c.session.suite.unwrap()).hash(b"").len();
        let wrong = forge(
            &mut c,
            2,
            HandshakeType::Finished,
            2,
            &vec![0; suite_hash_len],
        );
        let err = s.handle_datagram(&wrong, now).unwrap_err();
        assert_eq!(
            err,
            DtlsError::DecryptError("Finished verify_data mismatch")
        );
        // The client hears why.
        let alert = s.poll_datagram().expect("an alert");
        let mut rest = &alert[..];
        let opened = c.records.open_next(&mut rest, &mut 0).unwrap().unwrap();
        assert_eq!(
            opened.content,
            [2, u8::from(AlertDescription::DecryptError)]
        );
    }

    /// A client that allows both versions offers both; a DTLS 1.2 server answers in 1.2 and
    /// the client goes on in 1.2 from the same ClientHello; a 1.3 server gets 1.3.
    #[test]
    fn a_client_offering_both_versions_falls_back_to_a_12_server() {
        let pki = TestPki::generate();
        let now = Instant::now();
        let server12 = Context::new(Method::Dtls);
        server12
            .set_max_proto_version(crate::constants::DTLS1_2_VERSION)
            .unwrap();
        server12
            .use_certificate_chain_file(&pki.server_ecdsa.chain_path)
            .unwrap();
        server12
            .use_privatekey_file(&pki.server_ecdsa.key_path, FILETYPE_PEM)
            .unwrap();
        for (server, version) in [
            (server12, crate::constants::DTLS1_2_VERSION),
            (context13(&pki, true), DTLS1_3_VERSION),
        ] {
            let both = Context::new(Method::Dtls);
            let mut c =
                DtlsEngine::new(both.config(), Role::Client, DtlsParams::default(), now).unwrap();
            let mut s =
                DtlsEngine::new(server.config(), Role::Server, DtlsParams::default(), now).unwrap();
            exchange(&mut c, &mut s, now);
            assert!(c.is_established() && s.is_established(), "{version:#x}");
            assert_eq!(c.protocol_version(), Some(version));
            assert_eq!(s.protocol_version(), Some(version));
            c.send(b"either way").unwrap();
            exchange(&mut c, &mut s, now);
            assert_eq!(s.recv().as_deref(), Some(&b"either way"[..]));
        }
    }

    /// RFC 9147 §9: connection IDs asked for in the hellos go into every protected record,
    /// the receiver's; a record with another CID is not this association's.
    #[test]
    fn connection_ids_in_protected_records() {
        let pki = TestPki::generate();
        let now = Instant::now();
        let params = |cid: &[u8]| DtlsParams {
            connection_id: Some(cid.to_vec()),
            ..DtlsParams::default()
        };
        let (mut c, mut s) = engines(&pki, params(&[1, 2, 3, 4]), params(&[9, 9]));
        exchange(&mut c, &mut s, now);
        assert!(c.is_established() && s.is_established());
        assert_eq!(c.connection_ids(), (&[1, 2, 3, 4][..], &[9, 9][..]));
        assert_eq!(s.connection_ids(), (&[9, 9][..], &[1, 2, 3, 4][..]));
        c.send(b"with a CID").unwrap();
        let datagram = c.poll_datagram().unwrap();
        assert_eq!((datagram[0] & 0x10, &datagram[1..3]), (0x10, &[9, 9][..]));
        let mut misrouted = datagram.clone();
        misrouted[1] ^= 0xFF;
        s.handle_datagram(&misrouted, now).unwrap();
        assert_eq!(s.recv(), None);
        s.handle_datagram(&datagram, now).unwrap();
        assert_eq!(s.recv().as_deref(), Some(&b"with a CID"[..]));
        // A client that asks for none while taking the server's: its records carry the
        // server's CID, the server's none.
        let (mut c, mut s) = engines(&pki, params(&[]), params(&[7; 8]));
        exchange(&mut c, &mut s, now);
        s.send(b"no CID").unwrap();
        let datagram = s.poll_datagram().unwrap();
        assert_eq!(datagram[0] & 0x10, 0);
        c.handle_datagram(&datagram, now).unwrap();
        assert_eq!(c.recv().as_deref(), Some(&b"no CID"[..]));
        c.send(b"to 7s").unwrap();
        let datagram = c.poll_datagram().unwrap();
        assert_eq!(&datagram[1..9], &[7; 8]);
    }

    /// Only an authenticated record with our CID and a number above all before it may move
    /// the peer (RFC 9147 §9): not an older one, not a replay, not one without a CID.
    #[test]
    fn only_the_newest_record_with_a_cid_may_move_the_peer() {
        let pki = TestPki::generate();
        let now = Instant::now();
        let params = |cid: Option<&[u8]>| DtlsParams {
            connection_id: cid.map(<[u8]>::to_vec),
            ..DtlsParams::default()
        };
        let (mut c, mut s) = engines(&pki, params(Some(&[])), params(Some(&[5; 4])));
        exchange(&mut c, &mut s, now);
        c.send(b"one").unwrap();
        c.send(b"two").unwrap();
        let (one, two) = (c.poll_datagram().unwrap(), c.poll_datagram().unwrap());
        s.handle_datagram(&two, now).unwrap();
        assert!(s.datagram_may_move_peer());
        s.handle_datagram(&one, now).unwrap();
        assert!(!s.datagram_may_move_peer(), "older");
        s.handle_datagram(&two, now).unwrap();
        assert!(!s.datagram_may_move_peer(), "a replay");
        // The server's records to the client carry no CID (it asked for none).
        s.send(b"back").unwrap();
        c.handle_datagram(&s.poll_datagram().unwrap(), now).unwrap();
        assert!(!c.datagram_may_move_peer());
    }

    /// RFC 9147 §5.1: before the cookie comes back a server keeps nothing and answers with
    /// one datagram no larger than the ClientHello; a valid cookie admits the client.
    #[test]
    fn a_stateless_retry_never_amplifies() {
        let pki = TestPki::generate();
        let now = Instant::now();
        let server = context13(&pki, true).config();
        let provider: Arc<dyn CookieProvider> = Arc::new(HmacCookies::new(Duration::from_secs(60)));
        let addr: std::net::SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let (mut c, _) = raw_engines(&pki, now);
        let hello = c.poll_datagram().unwrap();
        let listen = |datagram: &[u8], from| {
            crate::dtls::listen13(&server, provider.clone(), Some(from), datagram, now)
        };
        let Some(crate::dtls::ListenOutcome::HelloVerifyRequest(retry)) = listen(&hello, addr)
        else {
            panic!("a retry");
        };
        assert!(
            retry.len() <= hello.len(),
            "{} > {}",
            retry.len(),
            hello.len()
        );
        // A ClientHello cut short (no padding, as another client might send) that the
        // retry would outgrow gets nothing.
        let mut short = hello.clone();
        short.truncate(120);
        assert!(!matches!(
            listen(&short, addr),
            Some(crate::dtls::ListenOutcome::HelloVerifyRequest(_))
        ));
        // The second ClientHello carries the cookie; from another address it is refused.
        c.handle_datagram(&retry, now).unwrap();
        let second: Vec<Vec<u8>> = std::iter::from_fn(|| c.poll_datagram()).collect();
        assert!(second.len() >= 2, "the hybrid share makes it two datagrams");
        let whole = {
            // Reassembled by a provider-sharing server engine, the cookie checks out.
            let params = DtlsParams {
                cookies: Some(provider.clone()),
                peer_addr: Some(addr),
                ..DtlsParams::default()
            };
            let mut s = Engine13::new(server.clone(), Role::Server, params, now, None).unwrap();
            for d in &second {
                s.handle_datagram(d, now).unwrap();
            }
            s.poll_datagram().is_some()
        };
        assert!(whole, "the server's flight");
        let params = DtlsParams {
            cookies: Some(provider.clone()),
            peer_addr: Some("127.0.0.2:5000".parse().unwrap()),
            ..DtlsParams::default()
        };
        let mut elsewhere = Engine13::new(server.clone(), Role::Server, params, now, None).unwrap();
        let mut outcome = Ok(());
        for d in &second {
            outcome = outcome.and(elsewhere.handle_datagram(d, now));
        }
        assert!(
            matches!(outcome, Err(DtlsError::IllegalParameter(_))),
            "{outcome:?}"
        );
    }

    /// RFC 8446 §2.2: the ticket from a full handshake resumes the session (through the
    /// server's retry for the hybrid group, so the binder covers the retry); no certificate
    /// is sent again and the peer's chain is the one verified then.
    #[test]
    fn a_ticket_resumes_the_session() {
        let pki = TestPki::generate();
        let now = Instant::now();
        let server = context13(&pki, true).config();
        let client = context13(&pki, false).config();
        let session = crate::session::Session::with_timeout(300);
        let params = || DtlsParams {
            session: Some(session.clone()),
            server_name: Some("localhost".into()),
            ..DtlsParams::default()
        };
        let mut first_chain = Vec::new();
        for resumed in [false, true] {
            let mut c = DtlsEngine::new(client.clone(), Role::Client, params(), now).unwrap();
            let mut s =
                DtlsEngine::new(server.clone(), Role::Server, DtlsParams::default(), now).unwrap();
            exchange(&mut c, &mut s, now);
            assert!(c.is_established() && s.is_established());
            assert_eq!((c.session_reused(), s.session_reused()), (resumed, resumed));
            let chain: Vec<_> = c
                .peer_certificates()
                .iter()
                .map(|x| x.to_der().to_vec())
                .collect();
            if resumed {
                assert_eq!(
                    chain, first_chain,
                    "the chain verified in the full handshake"
                );
            } else {
                first_chain = chain;
            }
            c.send(b"resumed?").unwrap();
            exchange(&mut c, &mut s, now);
            assert_eq!(s.recv().as_deref(), Some(&b"resumed?"[..]));
            // The ticket was acknowledged: nothing is left to retransmit.
            assert_eq!(s.next_timeout(), None);
        }
    }

    /// RFC 8446 §4.1.3: a forged HelloVerifyRequest makes a client offering both versions go
    /// on in 1.2, but a server able to speak 1.3 marks its 1.2 random, and the client, which
    /// offered 1.3, refuses the downgrade.
    #[test]
    fn a_forged_hello_verify_request_cannot_downgrade_to_12() {
        let pki = TestPki::generate();
        let now = Instant::now();
        let both = Context::new(Method::Dtls);
        both.set_max_proto_version(DTLS1_3_VERSION).unwrap();
        let mut c =
            DtlsEngine::new(both.config(), Role::Client, DtlsParams::default(), now).unwrap();
        let server = context13(&pki, true);
        let mut s =
            DtlsEngine::new(server.config(), Role::Server, DtlsParams::default(), now).unwrap();
        let hello = c.poll_datagram().unwrap();
        let attacker = HmacCookies::new(Duration::from_secs(60));
        let crate::dtls::ListenOutcome::HelloVerifyRequest(forged) =
            crate::dtls::cookie::listen(&attacker, None, &hello, now)
        else {
            panic!("a HelloVerifyRequest");
        };
        c.handle_datagram(&forged, now).unwrap();
        let mut outcome = Ok(());
        for _ in 0..4 {
            while let Some(d) = c.poll_datagram() {
                let _ = s.handle_datagram(&d, now);
            }
            while let Some(d) = s.poll_datagram() {
                outcome = outcome.and(c.handle_datagram(&d, now));
            }
        }
        assert_eq!(
            s.server_random().map(|r| r[24..].to_vec()),
            Some(crate::dtls::codec::message13::DOWNGRADE_TO_12.to_vec())
        );
        assert!(
            matches!(outcome, Err(DtlsError::IllegalParameter(_))),
            "{outcome:?}"
        );
        assert!(!c.is_established());
    }

    /// Once handshake keys exist, what comes in the clear is unauthenticated: an ACK there
    /// cannot stop the retransmission of protected records, an alert cannot end the
    /// association, and a new handshake message is not taken.
    #[test]
    fn plaintext_after_the_handshake_keys_changes_nothing() {
        let pki = TestPki::generate();
        let now = Instant::now();
        let (mut c, mut s) = raw_engines(&pki, now);
        pass(&mut c, &mut s, now).unwrap();
        pass(&mut s, &mut c, now).unwrap();
        pass(&mut c, &mut s, now).unwrap();
        // The server's flight is out (and lost): forge a plaintext ACK of its records.
        while s.poll_datagram().is_some() {}
        let deadline = s.next_timeout().expect("the flight's timer");
        let mut ack = Vec::new();
        let numbers: Vec<RecordNumber> = (0..8)
            .flat_map(|sequence| [0, 2].map(|epoch| RecordNumber { epoch, sequence }))
            .collect();
        encode_ack(&numbers, &mut ack);
        let mut forged = Vec::new();
        Epochs13::default()
            .seal(0, ContentType::from(ACK_CONTENT_TYPE), &ack, &mut forged)
            .unwrap();
        s.handle_datagram(&forged, now).unwrap();
        assert_eq!(s.next_timeout(), Some(deadline), "still retransmitting");
        // A close_notify in the clear is no close_notify.
        let mut close = Vec::new();
        let body = Alert {
            level: AlertLevel::Warning,
            description: AlertDescription::CloseNotify,
        }
        .encode();
        Epochs13::default()
            .seal(0, ContentType::Alert, &body, &mut close)
            .unwrap();
        c.handle_datagram(&close, now).unwrap();
        assert!(!c.peer_closed());
        s.handle_timeout(deadline).unwrap();
        pass(&mut s, &mut c, deadline).unwrap();
        pass(&mut c, &mut s, deadline).unwrap();
        assert!(c.handshake_done() && s.handshake_done());
    }

    /// A KeyUpdate asked for while our Finished is still unacknowledged waits for it: one
    /// flight at a time, so a lost Finished is still sent again.
    #[test]
    fn a_key_update_waits_for_the_flight_in_progress() {
        let pki = TestPki::generate();
        let now = Instant::now();
        let (mut c, mut s) = engines_awaiting_the_client_finished(&pki, now);
        assert!(c.handshake_done() && !s.handshake_done());
        // The client's last flight is lost.
        while c.poll_datagram().is_some() {}
        c.key_update(false, now).unwrap();
        assert!(
            c.poll_datagram().is_none(),
            "nothing before the Finished is acknowledged"
        );
        let later = c.next_timeout().unwrap();
        c.handle_timeout(later).unwrap();
        pass(&mut c, &mut s, later).unwrap();
        assert!(s.handshake_done(), "the Finished came again");
        // The server's ACK (and ticket) let the KeyUpdate go.
        for _ in 0..3 {
            pass(&mut s, &mut c, later).unwrap();
            pass(&mut c, &mut s, later).unwrap();
        }
        assert_eq!(c.records.write_epoch(), 4);
        c.send(b"after").unwrap();
        pass(&mut c, &mut s, later).unwrap();
        assert_eq!(s.recv().as_deref(), Some(&b"after"[..]));
    }
}
