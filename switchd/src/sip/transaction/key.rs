//! Transaction keys (RFC 3261 §17.1.3 and §17.2.3).
//!
//! A client transaction is matched by the top Via branch and the CSeq method of the
//! response; a server transaction by the top Via branch, sent-by and the request method, where
//! an ACK matches the INVITE it acknowledges and CANCEL is a transaction of its own.

use rsip::prelude::*;
use rsip::{Method, Request, Response, SipMessage};

use super::TransactionError;

/// The RFC 3261 branch magic cookie.
pub const MAGIC_COOKIE: &str = "z9hG4bK";

/// Which side of a transaction we are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// We sent the request.
    Client,
    /// We received the request.
    Server,
}

/// The identity of one transaction.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TransactionKey {
    /// Client or server side.
    pub role: Role,
    /// Top Via branch, as received (compared case-sensitively).
    pub branch: String,
    /// Upper-case method; `INVITE` for an ACK of a non-2xx final.
    pub method: String,
    /// Server side only: top Via sent-by as `host:port`, host lower-cased, default port filled.
    pub sent_by: Option<String>,
}

impl TransactionKey {
    /// The key of a client transaction for a request we are about to send.
    /// ACK cannot start a transaction (§17.1.1.3: a 2xx ACK is the TU's, a non-2xx ACK the
    /// transaction's own).
    pub fn client(request: &Request) -> Result<Self, TransactionError> {
        if request.method == Method::Ack {
            return Err(TransactionError::WrongMethod("ACK".into()));
        }
        Ok(Self {
            role: Role::Client,
            branch: top_branch(request)?,
            method: request.method.to_string(),
            sent_by: None,
        })
    }

    /// The client transaction a received response belongs to (§17.1.3).
    pub fn for_response(response: &Response) -> Result<Self, TransactionError> {
        let method = response
            .cseq_header()
            .map_err(|_| TransactionError::MissingHeader("CSeq"))?
            .method()
            .map_err(|e| TransactionError::BadHeader(format!("CSeq: {e}")))?;
        Ok(Self {
            role: Role::Client,
            branch: top_branch(response)?,
            method: method.to_string(),
            sent_by: None,
        })
    }

    /// The server transaction a received request belongs to (§17.2.3).
    pub fn server(request: &Request) -> Result<Self, TransactionError> {
        let via = request
            .via_header()
            .map_err(|_| TransactionError::MissingHeader("Via"))?
            .typed()
            .map_err(|e| TransactionError::BadHeader(format!("Via: {e}")))?;
        let branch = branch_of(&via)?;
        let host = via.uri.host_with_port.host.to_string().to_ascii_lowercase();
        let port = via
            .uri
            .host_with_port
            .port
            .map(|p| *p.value())
            .unwrap_or_else(|| *via.transport.default_port().value());
        let method = match request.method {
            Method::Ack => Method::Invite,
            m => m,
        };
        Ok(Self {
            role: Role::Server,
            branch,
            method: method.to_string(),
            sent_by: Some(format!("{host}:{port}")),
        })
    }

    /// [`Self::server`] for requests, [`Self::for_response`] for responses.
    pub fn for_message(msg: &SipMessage) -> Result<Self, TransactionError> {
        match msg {
            SipMessage::Request(r) => Self::server(r),
            SipMessage::Response(r) => Self::for_response(r),
        }
    }

    /// The key of the INVITE server transaction that a CANCEL with this key targets (§9.2).
    pub fn cancelled_invite(&self) -> Option<Self> {
        (self.role == Role::Server && self.method == "CANCEL").then(|| Self {
            method: "INVITE".into(),
            ..self.clone()
        })
    }
}

fn top_branch<M: HeadersExt>(msg: &M) -> Result<String, TransactionError> {
    let via = msg
        .via_header()
        .map_err(|_| TransactionError::MissingHeader("Via"))?
        .typed()
        .map_err(|e| TransactionError::BadHeader(format!("Via: {e}")))?;
    branch_of(&via)
}

fn branch_of(via: &rsip::typed::Via) -> Result<String, TransactionError> {
    let branch = via
        .branch()
        .ok_or(TransactionError::MissingHeader("Via branch"))?
        .to_string();
    if branch.starts_with(MAGIC_COOKIE) {
        Ok(branch)
    } else {
        Err(TransactionError::NoMagicCookie)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn req(text: &str) -> Request {
        Request::try_from(text).unwrap()
    }

    #[test]
    fn sipp_invite_and_its_responses_share_a_branch() {
        let inv = req(include_str!("../vectors/sipp_invite.sip"));
        let client = TransactionKey::client(&inv).unwrap();
        assert_eq!(client.branch, "z9hG4bK-30062-1-0");
        assert_eq!(client.method, "INVITE");
        for text in [
            include_str!("../vectors/sipp_180_ringing.sip"),
            include_str!("../vectors/sipp_200_invite.sip"),
            include_str!("../vectors/uas_486_busy.sip"),
        ] {
            let resp = Response::try_from(text).unwrap();
            assert_eq!(TransactionKey::for_response(&resp).unwrap(), client);
        }
        let server = TransactionKey::server(&inv).unwrap();
        assert_eq!(server.sent_by.as_deref(), Some("127.0.0.1:5071"));
        assert_ne!(server, client);
    }

    #[test]
    fn bye_response_does_not_match_invite() {
        let inv = TransactionKey::client(&req(include_str!("../vectors/sipp_invite.sip"))).unwrap();
        let ok = Response::try_from(include_str!("../vectors/sipp_200_bye.sip")).unwrap();
        assert_ne!(TransactionKey::for_response(&ok).unwrap(), inv);
    }

    #[test]
    fn non_2xx_ack_matches_invite_server_transaction() {
        let inv = req(include_str!("../vectors/sipp_invite.sip"));
        let busy = Response::try_from(include_str!("../vectors/uas_486_busy.sip")).unwrap();
        let ack = crate::sip::message::ack_for(&inv, &busy).unwrap();
        assert_eq!(
            TransactionKey::server(&ack).unwrap(),
            TransactionKey::server(&inv).unwrap()
        );
        // The 2xx ACK SIPp sends has a new branch: no match, it belongs to the dialog.
        let ack2xx = req(include_str!("../vectors/sipp_ack_2xx.sip"));
        assert_ne!(
            TransactionKey::server(&ack2xx).unwrap(),
            TransactionKey::server(&inv).unwrap()
        );
        assert!(TransactionKey::client(&ack2xx).is_err());
    }

    #[test]
    fn cancel_is_its_own_transaction() {
        let inv = req(include_str!("../vectors/sipp_invite.sip"));
        let mut cancel = inv.clone();
        cancel.method = Method::Cancel;
        let k = TransactionKey::server(&cancel).unwrap();
        assert_eq!(k.method, "CANCEL");
        assert_ne!(k, TransactionKey::server(&inv).unwrap());
        assert_eq!(
            k.cancelled_invite(),
            Some(TransactionKey::server(&inv).unwrap())
        );
    }

    #[test]
    fn sent_by_default_port_and_case() {
        let text = include_str!("../vectors/baresip_options.sip")
            .replace("127.0.0.1:5072;branch", "PC.Example.COM;branch");
        let k = TransactionKey::server(&req(&text)).unwrap();
        assert_eq!(k.sent_by.as_deref(), Some("pc.example.com:5060"));
        assert_eq!(k.branch, "z9hG4bK8c0f5a1f3e2b7d90");
    }

    #[test]
    fn rfc2543_branch_and_missing_via_are_errors() {
        let text = include_str!("../vectors/baresip_options.sip")
            .replace("branch=z9hG4bK8c0f5a1f3e2b7d90", "branch=1234");
        assert_eq!(
            TransactionKey::server(&req(&text)),
            Err(TransactionError::NoMagicCookie)
        );
        let mut r = req(include_str!("../vectors/baresip_options.sip"));
        r.headers.retain(|h| !matches!(h, rsip::Header::Via(_)));
        assert_eq!(
            TransactionKey::server(&r),
            Err(TransactionError::MissingHeader("Via"))
        );
    }
}
