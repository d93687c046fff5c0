//! GetTelemetrySubscriptions (key 71) and PushTelemetry (key 72): KIP-714 client
//! metrics, answered as a Kafka broker with a telemetry plugin but no client-metrics
//! subscriptions answers them (`ClientMetricsManager`).
//!
//! Every client instance gets an empty subscription: no requested metrics, Kafka's
//! default push interval (`interval.ms`, 5 minutes), `telemetry.max.bytes` (1 MiB), the
//! compression types Kafka accepts in its order of preference, delta temporality, and
//! Kafka's subscription id (CRC32C of the subscribed metrics and interval, XORed with
//! the instance id's hash). A client told "no metrics" does not push; one that pushes
//! anyway with the right subscription id is accepted and the payload discarded (the
//! pushes show in `strom_requests_total{api="PushTelemetry"}`).
//!
//! The per-instance state Kafka keeps is kept here too, with its rules: a second
//! GetTelemetrySubscriptions or PushTelemetry within the push interval is throttled
//! (THROTTLING_QUOTA_EXCEEDED), except a Get right after an UNKNOWN_SUBSCRIPTION_ID or
//! UNSUPPORTED_COMPRESSION_TYPE, a push right after a Get, and a terminating push; after
//! a terminating push the instance accepts no more pushes. Kafka forgets an instance when
//! its connection closes; Strom's handlers do not see connections close, so an instance
//! heard from on a new connection (another client address) starts afresh instead — which
//! can only accept a request Kafka would have throttled, never refuse one Kafka accepts.
//! Instances are forgotten 15 minutes after their last request (Kafka's
//! max(60 s, 3 × push interval)) and at most 16384 are kept (Kafka's cache size).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{LazyLock, Mutex};

use strom_protocol::{
    GetTelemetrySubscriptionsRequest, GetTelemetrySubscriptionsResponse, PushTelemetryRequest, PushTelemetryResponse,
    Uuid,
};

use super::{ApiRange, RequestContext};
use crate::error::ErrorCode;

/// GetTelemetrySubscriptions versions served.
pub const GET_SUBSCRIPTIONS_API: ApiRange = ApiRange { key: 71, min: 0, max: 0, advertised_min: 0 };

/// PushTelemetry versions served.
pub const PUSH_API: ApiRange = ApiRange { key: 72, min: 0, max: 0, advertised_min: 0 };

/// Kafka's error codes for these APIs (not used elsewhere in Strom).
pub const THROTTLING_QUOTA_EXCEEDED: i16 = 89;
/// The push names a subscription id other than the instance's current one.
pub const UNKNOWN_SUBSCRIPTION_ID: i16 = 117;
/// The pushed metrics are larger than `telemetry.max.bytes`.
pub const TELEMETRY_TOO_LARGE: i16 = 118;

/// `ClientMetricsConfigs.INTERVAL_MS_DEFAULT`.
pub const PUSH_INTERVAL_MS: i32 = 5 * 60 * 1000;

/// `telemetry.max.bytes`' default.
pub const TELEMETRY_MAX_BYTES: i32 = 1024 * 1024;

/// `ClientMetricsManager.SUPPORTED_COMPRESSION_TYPES`: zstd, lz4, gzip, snappy, in the
/// broker's order of preference (clients take the first they support).
pub const ACCEPTED_COMPRESSION_TYPES: [i8; 4] = [4, 3, 1, 2];

/// Kafka's `ClientMetricsManager` cache size.
const MAX_INSTANCES: usize = 16384;

/// How long an instance is remembered after its last request: max(60 s, 3 × interval).
const EXPIRY_MS: i64 = 3 * PUSH_INTERVAL_MS as i64;

/// Kafka's reserved `Uuid.METADATA_TOPIC_ID` (0…01), never a client instance id.
const METADATA_TOPIC_ID: Uuid = Uuid([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);

/// CRC-32C (Castagnoli, reflected), computable at compile time.
const fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    let mut i = 0;
    while i < data.len() {
        crc ^= data[i] as u32;
        let mut k = 0;
        while k < 8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0x82F6_3B78 } else { crc >> 1 };
            k += 1;
        }
        i += 1;
    }
    !crc
}

/// Kafka hashes `metrics.toString() + pushIntervalMs`; with no subscribed metrics the
/// set prints as `[]`.
const EMPTY_SUBSCRIPTION_CRC: u32 = crc32c(b"[]300000");

/// Kafka's `Uuid.hashCode`: the two 64-bit halves XORed, then folded to 32 bits.
fn java_uuid_hash(id: &Uuid) -> i32 {
    let (hi, lo) = id.0.split_at(8);
    let half = |b: &[u8]| b.iter().fold(0u64, |acc, &x| (acc << 8) | u64::from(x));
    let h = half(hi) ^ half(lo);
    ((h >> 32) as u32 ^ h as u32) as i32
}

/// `ClientMetricsManager.computeSubscriptionId` for the empty subscription.
pub fn subscription_id(id: &Uuid) -> i32 {
    (EMPTY_SUBSCRIPTION_CRC as i32) ^ java_uuid_hash(id)
}

/// One client instance (`ClientMetricsInstance`).
#[derive(Debug)]
struct Instance {
    peer: SocketAddr,
    last_get_ms: i64,
    last_push_ms: i64,
    last_seen_ms: i64,
    terminating: bool,
    last_error: i16,
}

impl Instance {
    fn new(peer: SocketAddr, now: i64) -> Instance {
        Instance { peer, last_get_ms: 0, last_push_ms: 0, last_seen_ms: now, terminating: false, last_error: 0 }
    }

    /// `maybeUpdateGetRequestTimestamp`: a Get is due a push interval after the last Get
    /// or push.
    fn may_get(&mut self, now: i64) -> bool {
        if now - self.last_get_ms.max(self.last_push_ms) >= i64::from(PUSH_INTERVAL_MS) {
            self.last_get_ms = now;
            return true;
        }
        false
    }

    /// `maybeUpdatePushRequestTimestamp`: the first push after a Get is always due
    /// (clients jitter the interval); later ones a push interval after the last push.
    fn may_push(&mut self, now: i64) -> bool {
        let ok = self.last_get_ms > self.last_push_ms || now - self.last_push_ms >= i64::from(PUSH_INTERVAL_MS);
        if ok {
            self.last_push_ms = now;
        }
        ok
    }
}

static INSTANCES: LazyLock<Mutex<HashMap<Uuid, Instance>>> = LazyLock::new(|| Mutex::new(HashMap::new()));

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The instance for `id`, created (or restarted, when heard from on another connection)
/// as needed, within the cache bounds.
fn instance(map: &mut HashMap<Uuid, Instance>, id: Uuid, peer: SocketAddr, now: i64) -> &mut Instance {
    if map.len() >= MAX_INSTANCES && !map.contains_key(&id) {
        map.retain(|_, i| now - i.last_seen_ms < EXPIRY_MS);
        if map.len() >= MAX_INSTANCES {
            // Still full of live instances: forget the one heard from longest ago (LRU).
            if let Some(oldest) = map.iter().min_by_key(|(_, i)| i.last_seen_ms).map(|(k, _)| *k) {
                map.remove(&oldest);
            }
        }
    }
    let inst = map.entry(id).or_insert_with(|| Instance::new(peer, now));
    if inst.peer != peer || now - inst.last_seen_ms >= EXPIRY_MS {
        *inst = Instance::new(peer, now);
    }
    inst.last_seen_ms = now;
    inst
}

/// A new instance id: random, not reserved, not known, and (as Kafka's
/// `Uuid.randomUuid`) not printing with a leading `-`, so it can be passed on a command
/// line.
fn new_instance_id(map: &HashMap<Uuid, Instance>) -> Uuid {
    loop {
        let id = crate::metadata::random_uuid();
        let leading_dash = id.0[0] >> 2 == 62;
        if id != Uuid::ZERO && id != METADATA_TOPIC_ID && !leading_dash && !map.contains_key(&id) {
            return id;
        }
    }
}

fn lock() -> std::sync::MutexGuard<'static, HashMap<Uuid, Instance>> {
    INSTANCES.lock().unwrap_or_else(|p| p.into_inner())
}

/// Answers GetTelemetrySubscriptions: a zero instance id gets a new one; every instance
/// gets the empty subscription.
pub fn get_subscriptions(
    ctx: &RequestContext,
    _version: i16,
    req: GetTelemetrySubscriptionsRequest,
) -> GetTelemetrySubscriptionsResponse {
    let now = now_ms();
    let mut map = lock();
    let id = if req.client_instance_id == Uuid::ZERO { new_instance_id(&map) } else { req.client_instance_id };
    let inst = instance(&mut map, id, ctx.peer, now);
    let retrying_after_error =
        inst.last_error == UNKNOWN_SUBSCRIPTION_ID || inst.last_error == ErrorCode::UnsupportedCompressionType.code();
    if !inst.may_get(now) && !retrying_after_error {
        return GetTelemetrySubscriptionsResponse { error_code: THROTTLING_QUOTA_EXCEEDED, ..Default::default() };
    }
    inst.last_error = ErrorCode::None.code();
    GetTelemetrySubscriptionsResponse {
        client_instance_id: id,
        subscription_id: subscription_id(&id),
        accepted_compression_types: ACCEPTED_COMPRESSION_TYPES.to_vec(),
        push_interval_ms: PUSH_INTERVAL_MS,
        telemetry_max_bytes: TELEMETRY_MAX_BYTES,
        delta_temporality: true,
        requested_metrics: Vec::new(),
        ..Default::default()
    }
}

/// The checks of Kafka's `validatePushRequest`, in its order.
fn validate_push(inst: &mut Instance, req: &PushTelemetryRequest, now: i64) -> Result<(), i16> {
    if inst.terminating {
        return Err(ErrorCode::InvalidRequest.code());
    }
    if !inst.may_push(now) && !req.terminating {
        return Err(THROTTLING_QUOTA_EXCEEDED);
    }
    if req.subscription_id != subscription_id(&req.client_instance_id) {
        return Err(UNKNOWN_SUBSCRIPTION_ID);
    }
    // `CompressionType.forId`: none, gzip, snappy, lz4, zstd.
    if !(0..=4).contains(&req.compression_type) {
        return Err(ErrorCode::UnsupportedCompressionType.code());
    }
    if req.metrics.len() > TELEMETRY_MAX_BYTES as usize {
        return Err(TELEMETRY_TOO_LARGE);
    }
    Ok(())
}

/// Answers PushTelemetry: validated as Kafka does, then the metrics are discarded.
pub fn push(ctx: &RequestContext, _version: i16, req: PushTelemetryRequest) -> PushTelemetryResponse {
    let id = req.client_instance_id;
    if id == Uuid::ZERO || id == METADATA_TOPIC_ID {
        return PushTelemetryResponse { error_code: ErrorCode::InvalidRequest.code(), ..Default::default() };
    }
    let now = now_ms();
    let mut map = lock();
    let inst = instance(&mut map, id, ctx.peer, now);
    let outcome = validate_push(inst, &req, now);
    // Kafka records the terminating flag whether or not the push was accepted.
    inst.terminating = req.terminating;
    let error_code = match outcome {
        Ok(()) => {
            tracing::debug!(client_instance_id = %id, bytes = req.metrics.len(), "client telemetry discarded");
            ErrorCode::None.code()
        }
        Err(code) => code,
    };
    inst.last_error = error_code;
    PushTelemetryResponse { error_code, ..Default::default() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_matches_the_standard_check_value() {
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
    }

    #[test]
    fn uuid_hash_is_javas() {
        // new Uuid(0x0123456789abcdefL, 0x1122334455667788L).hashCode()
        let id = Uuid([0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88]);
        assert_eq!(java_uuid_hash(&id), -858993596);
        assert_eq!(subscription_id(&Uuid::ZERO), EMPTY_SUBSCRIPTION_CRC as i32);
    }
}
