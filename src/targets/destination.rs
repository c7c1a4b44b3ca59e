//! Query destinations (seed 004): one request per record, the record carried in the query
//! string (static parameters of the base URL, then the mapped columns).

use async_trait::async_trait;
use serde_json::{Map, Value};
use url::Url;

use super::receiver::Receiver;
use super::{ResolveError, SentRequest, Target, data_object, record_object};
use crate::domain::delivery::{AttemptOutcome, FailurePolicy};
use crate::domain::destination::{ACTIVATION_DELETE_EVENT_TYPE, Destination};
use crate::domain::destination::{QueryParam, request_url};
use crate::domain::queue::ClaimedDelivery;

pub struct DestinationTarget {
    base: Url,
    method: reqwest::Method,
    params: Vec<QueryParam>,
    receiver: Receiver,
}

impl DestinationTarget {
    pub fn new(destination: Destination, receiver: Receiver) -> Result<Self, ResolveError> {
        let base = Url::parse(&destination.url).map_err(|e| ResolveError::Config(format!("destination URL: {e}")))?;
        let method = reqwest::Method::from_bytes(destination.method.as_str().as_bytes())
            .map_err(|e| ResolveError::Config(format!("destination method: {e}")))?;
        Ok(Self { base, method, params: destination.query_params, receiver })
    }

    /// The record: an activation's row (delivery parameters), or the event's data.
    fn record(delivery: &ClaimedDelivery) -> Result<Map<String, Value>, AttemptOutcome> {
        match &delivery.params {
            Some(record) => record_object("the record", record),
            None => data_object(delivery),
        }
    }

    /// The record's request: base URL, static parameters, then its mapped columns; a sync run's
    /// mirror sends DELETE for a key that left, whatever the destination's method.
    fn request(&self, delivery: &ClaimedDelivery) -> Result<(Url, reqwest::RequestBuilder), AttemptOutcome> {
        let url = request_url(&self.base, &self.params, &Self::record(delivery)?);
        let method = if delivery.event.event_type == ACTIVATION_DELETE_EVENT_TYPE { reqwest::Method::DELETE } else { self.method.clone() };
        Ok((url.clone(), self.receiver.request(method, url)))
    }
}

#[async_trait]
impl Target for DestinationTarget {
    fn failure_policy(&self) -> FailurePolicy {
        FailurePolicy::RetryAll
    }

    async fn deliver(&self, delivery: &ClaimedDelivery) -> AttemptOutcome {
        self.receiver.send(|| self.request(delivery)).await
    }

    fn describe(&self, delivery: &ClaimedDelivery) -> Result<SentRequest, AttemptOutcome> {
        self.request(delivery).and_then(|(_, request)| self.receiver.describe(request, delivery.event.traceparent.as_deref()))
    }
}
