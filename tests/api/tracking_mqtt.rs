//! OwnTracks over MQTT (PROTOCOL.md, "Tracking apps"): the server subscribes to
//! `owntracks/+/+` on the broker in `ingest.mqtt_url`; a location published on
//! `owntracks/<user>/<device>` moves the rider. Needs Mosquitto on 127.0.0.1:1883 (`.ci/run`
//! starts one); the reconnect test runs a broker of its own (`mosquitto` on PATH).

use crate::helpers::*;
use crate::tracking::{device_for, owntracks_location, position};
use rumqttc::{AsyncClient, MqttOptions, QoS};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const BROKER: (&str, u16) = ("127.0.0.1", 1883);

fn require_broker(port: u16) {
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok(),
        "these tests need an MQTT broker on 127.0.0.1:{port} (.ci/run starts Mosquitto; or: \
         apt-get install mosquitto && mosquitto -d -p {port})"
    );
}

/// An MQTT client as the OwnTracks app is one: it publishes; its event loop runs on a
/// task of its own (and keeps retrying while the broker is away).
fn phone(port: u16) -> AsyncClient {
    let opts = MqttOptions::new(unique("owntracks-phone-"), BROKER.0, port);
    let (client, mut events) = AsyncClient::new(opts, 16);
    tokio::spawn(async move {
        loop {
            if events.poll().await.is_err() {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    });
    client
}

/// Publishes a location at `at` every 200 ms (as the app does while moving) until the
/// server shows the rider there: the server's subscription may still be on its way.
async fn publish_until_seen(
    app: &TestApp,
    phone: &AsyncClient,
    topic: &str,
    rider: &str,
    at: (f64, f64),
) {
    wait_for(
        "the rider to move to the published location",
        Duration::from_secs(15),
        || async {
            let ts_s = now_ms() / 1000;
            let body = owntracks_location(at, ts_s).to_string();
            let _ = phone.publish(topic, QoS::AtLeastOnce, false, body).await;
            tokio::time::sleep(Duration::from_millis(200)).await;
            match position(app, rider).await {
                Some(((lat, lon), _)) if (lat - at.0).abs() < 1e-9 && (lon - at.1).abs() < 1e-9 => {
                    Some(())
                }
                _ => None,
            }
        },
    )
    .await;
}

#[actix_web::test]
async fn an_owntracks_location_published_over_mqtt_moves_the_rider() {
    require_broker(BROKER.1);
    let app = spawn_app(|s| s.ingest.mqtt_url = format!("mqtt://{}:{}", BROKER.0, BROKER.1)).await;
    let (rider, _) = app.create_rider().await;
    let device = device_for(&app, &rider).await;
    let phone = phone(BROKER.1);
    let topic = format!("owntracks/{}/{device}", unique("courier"));
    let a = offset(SHOP, 120.0, 40.0);
    publish_until_seen(&app, &phone, &topic, &rider, a).await;

    // An unknown device on the same broker moves nobody; a message that is not a
    // location is ignored.
    let stranger = format!("owntracks/{}/not-a-device-0123456789", unique("courier"));
    let b = offset(SHOP, 150.0, 40.0);
    let body = owntracks_location(b, now_ms() / 1000).to_string();
    phone
        .publish(&stranger, QoS::AtLeastOnce, false, body)
        .await
        .unwrap();
    let lwt = serde_json::json!({"_type": "lwt", "tst": now_ms() / 1000}).to_string();
    phone
        .publish(&topic, QoS::AtLeastOnce, false, lwt)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let ((lat, lon), _) = position(&app, &rider).await.unwrap();
    assert!(
        (lat - a.0).abs() < 1e-9 && (lon - a.1).abs() < 1e-9,
        "still at {a:?}"
    );
}

/// A free port on the loopback interface (for a broker of the test's own).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A broker of the test's own, stopped when dropped.
struct Broker(Child);

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `mosquitto -p PORT`: loopback only, anonymous clients, in the foreground.
fn broker_on(port: u16) -> Broker {
    let broker = Broker(
        Command::new("mosquitto")
            .arg("-p")
            .arg(port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto on PATH (apt-get install mosquitto)"),
    );
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return broker;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("mosquitto did not start on port {port}");
}

#[actix_web::test]
async fn the_subscriber_comes_back_when_the_broker_does() {
    let port = free_port();
    let broker = broker_on(port);
    let app = spawn_app(|s| s.ingest.mqtt_url = format!("mqtt://127.0.0.1:{port}")).await;
    let (rider, _) = app.create_rider().await;
    let device = device_for(&app, &rider).await;
    let phone = phone(port);
    let topic = format!("owntracks/{}/{device}", unique("courier"));
    publish_until_seen(&app, &phone, &topic, &rider, offset(SHOP, 100.0, 0.0)).await;

    // The broker goes away and comes back on the same port.
    drop(broker);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _broker = broker_on(port);
    publish_until_seen(&app, &phone, &topic, &rider, offset(SHOP, 200.0, 0.0)).await;
}
