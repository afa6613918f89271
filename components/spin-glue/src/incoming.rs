//! Requests into a component and its answers: `wasi:http` to and from the
//! root crate's plain [`Request`] / [`Response`].

use futures::StreamExt;
use spin_sdk::http::{Fields, IncomingRequest, OutgoingResponse, ResponseOutparam};
use spin_work_queue::api::ApiError;
use spin_work_queue::http::{Request, Response};

/// Read an incoming request; the body is read up to `max_body + 1` bytes
/// (so an oversized body is seen as such without reading all of it).
pub async fn read_request(req: IncomingRequest, max_body: usize) -> Result<Request, ApiError> {
    let method = req.method().to_string().to_ascii_uppercase();
    let path_and_query = req.path_with_query().unwrap_or_else(|| "/".into());
    let headers: Vec<(String, String)> = req
        .headers()
        .entries()
        .into_iter()
        .map(|(k, v)| (k, String::from_utf8_lossy(&v).into_owned()))
        .collect();
    let mut body = Vec::new();
    let mut stream = req.into_body_stream();
    while let Some(chunk) = stream.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::BadRequest(format!("cannot read the body: {e:?}")))?;
        body.extend_from_slice(&chunk);
        if body.len() > max_body {
            body.truncate(max_body + 1);
            break;
        }
    }
    let mut api = Request::new(&method, &path_and_query);
    api.headers = headers;
    api.body = body;
    Ok(api)
}

/// Send `resp` as the answer and finish its body, so the client has the
/// complete response before the component does anything else.
pub async fn respond(out: ResponseOutparam, resp: &Response) {
    let pairs: Vec<(String, Vec<u8>)> = resp
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), v.clone().into_bytes()))
        .collect();
    let headers = Fields::from_list(&pairs).unwrap_or_else(|_| Fields::new());
    let response = OutgoingResponse::new(headers);
    if response.set_status_code(resp.status).is_err() {
        let _ = response.set_status_code(500);
    }
    if let Err(e) = out.set_with_body(response, resp.body.clone()).await {
        eprintln!("spin-work-queue: could not send the response: {e:?}");
    }
}
