//! Small message helpers that rsip 0.4 does not provide: building a response from a request
//! (§8.2.6) and the ACK a client INVITE transaction sends for a non-2xx final (§17.1.1.3).

use rsip::prelude::*;
use rsip::{Header, Headers, Method, Request, Response, StatusCode, Version};

use super::transaction::TransactionError;

/// A response to `request` with `status`, copying Via, From, To, Call-ID and CSeq (§8.2.6.2).
/// The TU adds a To tag and any other headers; `100 Trying` needs none.
pub fn response_for(request: &Request, status: StatusCode) -> Response {
    let mut headers = Headers::default();
    for header in request.headers.iter() {
        if matches!(
            header,
            Header::Via(_) | Header::From(_) | Header::To(_) | Header::CallId(_) | Header::CSeq(_)
        ) {
            headers.push(header.clone());
        }
    }
    headers.push(Header::ContentLength(0.into()));
    Response {
        status_code: status,
        version: Version::V2,
        headers,
        body: Vec::new(),
    }
}

/// The ACK for a non-2xx final `response` to `invite` (§17.1.1.3): same Request-URI, Call-ID,
/// From, CSeq number and the INVITE's top Via only; To from the response; the INVITE's Routes.
pub fn ack_for(invite: &Request, response: &Response) -> Result<Request, TransactionError> {
    let via = invite
        .via_header()
        .map_err(|_| TransactionError::MissingHeader("Via"))?;
    let cseq = invite
        .cseq_header()
        .map_err(|_| TransactionError::MissingHeader("CSeq"))?
        .seq()
        .map_err(|e| TransactionError::BadHeader(format!("CSeq: {e}")))?;
    let from = invite
        .from_header()
        .map_err(|_| TransactionError::MissingHeader("From"))?;
    let call_id = invite
        .call_id_header()
        .map_err(|_| TransactionError::MissingHeader("Call-ID"))?;
    let to = response
        .to_header()
        .map_err(|_| TransactionError::MissingHeader("To"))?;

    let mut headers = Headers::default();
    headers.push(Header::Via(via.clone()));
    for header in invite.headers.iter() {
        if let Header::Route(route) = header {
            headers.push(Header::Route(route.clone()));
        }
    }
    headers.push(Header::From(from.clone()));
    headers.push(Header::To(to.clone()));
    headers.push(Header::CallId(call_id.clone()));
    headers.push(Header::CSeq(
        rsip::typed::CSeq {
            seq: cseq,
            method: Method::Ack,
        }
        .into(),
    ));
    headers.push(Header::MaxForwards(70.into()));
    headers.push(Header::ContentLength(0.into()));
    Ok(Request {
        method: Method::Ack,
        uri: invite.uri.clone(),
        version: Version::V2,
        headers,
        body: Vec::new(),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn invite() -> Request {
        Request::try_from(include_str!("vectors/sipp_invite.sip")).unwrap()
    }

    #[test]
    fn trying_copies_transaction_headers() {
        let inv = invite();
        let r = response_for(&inv, StatusCode::Trying);
        assert_eq!(r.status_code.code(), 100);
        assert_eq!(r.via_header().unwrap(), inv.via_header().unwrap());
        assert_eq!(r.cseq_header().unwrap(), inv.cseq_header().unwrap());
        assert!(r.contact_header().is_err());
        let text = r.to_string();
        let back = Response::try_from(text.as_str()).unwrap();
        assert_eq!(
            back.call_id_header().unwrap(),
            inv.call_id_header().unwrap()
        );
    }

    #[test]
    fn ack_for_busy_follows_17_1_1_3() {
        let inv = invite();
        let busy = Response::try_from(include_str!("vectors/uas_486_busy.sip")).unwrap();
        let ack = ack_for(&inv, &busy).unwrap();
        assert_eq!(ack.method, Method::Ack);
        assert_eq!(ack.uri, inv.uri);
        assert_eq!(ack.via_header().unwrap(), inv.via_header().unwrap());
        assert_eq!(ack.to_header().unwrap(), busy.to_header().unwrap());
        let cseq = ack.cseq_header().unwrap().typed().unwrap();
        assert_eq!((cseq.seq, cseq.method), (1, Method::Ack));
        // It survives a round trip through text.
        let back = Request::try_from(ack.to_string()).unwrap();
        assert_eq!(back, ack);
    }
}
