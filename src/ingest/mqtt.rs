//! OwnTracks over MQTT: with `ingest.mqtt_url` set, the server subscribes to
//! `owntracks/+/+` on that broker (rumqttc) and takes each location message through the
//! same intake as the HTTP endpoints; the topic's device part is a device id.
//!
//! Two tasks: the client's event loop, which only moves messages into a bounded queue
//! (`ingest.mqtt_queue`; a full queue drops the message, counted as `dropped`), and a
//! reader that parses and hands each fix on without waiting for its verdict. A broker that
//! goes away is retried with a growing pause ([`Backoff`]); every (re)connection
//! subscribes again, since the session is clean.

use super::intake::{record, Intake, Outcome, Source};
use super::owntracks;
use rand::RngCore;
use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Packet, Publish, QoS};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// The topics OwnTracks publishes locations to: `owntracks/<user>/<device>`.
pub const TOPIC: &str = "owntracks/+/+";

/// Pause before the next connection attempt: doubling from `first` up to `max`, back to
/// `first` once a connection succeeds.
#[derive(Debug, Clone)]
pub struct Backoff {
    first: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    pub fn new(first: Duration, max: Duration) -> Self {
        Self {
            first,
            max,
            next: first,
        }
    }

    /// The pause to take now; the one after is twice as long (capped).
    pub fn pause(&mut self) -> Duration {
        let now = self.next;
        self.next = (self.next * 2).min(self.max);
        now
    }

    pub fn reset(&mut self) {
        self.next = self.first;
    }
}

/// Client options from `mqtt://[user:password@]host[:port][?client_id=…]` (rumqttc reads
/// the URL; a client id is made up when the URL has none).
pub fn options(url: &str) -> Result<MqttOptions, String> {
    let mut parsed = url::Url::parse(url).map_err(|e| format!("ingest.mqtt_url: {e}"))?;
    if !parsed.query_pairs().any(|(k, _)| k == "client_id") {
        let mut id = [0u8; 6];
        rand::thread_rng().fill_bytes(&mut id);
        let id: String = id.iter().map(|b| format!("{b:02x}")).collect();
        parsed
            .query_pairs_mut()
            .append_pair("client_id", &format!("dispatchd-{id}"));
    }
    MqttOptions::try_from(parsed).map_err(|e| format!("ingest.mqtt_url: {e}"))
}

/// Starts the subscriber (it runs until `shutdown`). Fails only on a malformed URL: a
/// broker that does not answer is retried in the background.
pub fn spawn(
    url: &str,
    queue: usize,
    intake: Arc<Intake>,
    shutdown: watch::Receiver<bool>,
) -> Result<(), String> {
    let opts = options(url)?;
    let broker = opts.broker_address();
    let (client, events) = AsyncClient::new(opts, 16);
    let (tx, rx) = mpsc::channel(queue.max(1));
    tracing::info!(host = %broker.0, port = broker.1, "mqtt: subscribing to {TOPIC}");
    tokio::spawn(pump(client, events, tx, shutdown));
    tokio::spawn(read(rx, intake));
    Ok(())
}

/// Drives the client: connects (again), subscribes, queues what arrives.
async fn pump(
    client: AsyncClient,
    mut events: EventLoop,
    queue: mpsc::Sender<Publish>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
    loop {
        let event = tokio::select! {
            _ = shutdown.changed() => break,
            e = events.poll() => e,
        };
        match event {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                backoff.reset();
                tracing::info!("mqtt: connected");
                if let Err(e) = client.try_subscribe(TOPIC, QoS::AtLeastOnce) {
                    tracing::warn!(%e, "mqtt: subscribe not queued");
                }
            }
            Ok(Event::Incoming(Packet::Publish(p))) => {
                if queue.try_send(p).is_err() {
                    record(Source::OwnTracksMqtt, &Outcome::Dropped);
                }
            }
            Ok(_) => {}
            Err(e) => {
                let pause = backoff.pause();
                tracing::warn!(%e, retry_in_ms = pause.as_millis() as u64, "mqtt: broker unreachable");
                tokio::select! {
                    _ = shutdown.changed() => break,
                    _ = tokio::time::sleep(pause) => {}
                }
            }
        }
    }
    let _ = client.try_disconnect();
}

/// Parses each queued message and hands its fix on (not waiting for the verdict, so one
/// slow rider does not hold up the others).
async fn read(mut queue: mpsc::Receiver<Publish>, intake: Arc<Intake>) {
    while let Some(message) = queue.recv().await {
        let Some((_user, device)) = owntracks::topic_parts(&message.topic) else {
            continue;
        };
        if let Err(refused) = intake.identify(device, None).await {
            record(Source::OwnTracksMqtt, &refused);
            continue;
        }
        let parsed = match owntracks::parse(&message.payload) {
            Ok(None) => continue, // not a location (lwt, transition, …)
            Ok(Some(mut fix)) => {
                fix.device_id = Some(device.to_string());
                Ok(fix)
            }
            Err(e) => Err(e),
        };
        intake.submit_detached(Source::OwnTracksMqtt, parsed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_its_cap_and_resets() {
        let ms = Duration::from_millis;
        let mut b = Backoff::new(ms(100), ms(500));
        let pauses: Vec<_> = (0..5).map(|_| b.pause()).collect();
        assert_eq!(pauses, [ms(100), ms(200), ms(400), ms(500), ms(500)]);
        b.reset();
        assert_eq!(b.pause(), ms(100));
    }

    #[test]
    fn options_come_from_the_url_with_a_client_id_made_up_if_missing() {
        let o = options("mqtt://127.0.0.1:1883").unwrap();
        assert_eq!(o.broker_address(), ("127.0.0.1".to_string(), 1883));
        assert!(o.client_id().starts_with("dispatchd-"));
        let o = options("mqtt://broker.local?client_id=fleet-1").unwrap();
        assert_eq!(o.broker_address(), ("broker.local".to_string(), 1883));
        assert_eq!(o.client_id(), "fleet-1");
        assert!(options("not a url").is_err());
        assert!(
            options("http://127.0.0.1:1883").is_err(),
            "not an MQTT scheme"
        );
    }
}
