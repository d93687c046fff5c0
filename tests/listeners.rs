//! Several client listeners, as apache/kafka compose files configure them: each
//! connection is told the endpoint advertised for the listener it arrived on (Metadata,
//! FindCoordinator, DescribeCluster), and the controller listener is not bound.

use std::collections::BTreeMap;
use std::time::Duration;

use strom::config::Config;
use strom_client::Client;
use strom_protocol::{
    DescribeClusterRequest, DescribeClusterResponse, FindCoordinatorRequest, FindCoordinatorResponse, MetadataRequest,
    MetadataResponse,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_listener_advertises_its_own_endpoint() {
    let dir = tempfile::tempdir().expect("tempdir");
    // The shape of apache/kafka's single-node compose environment, on free ports.
    let env: BTreeMap<String, String> = [
        ("KAFKA_NODE_ID", "1"),
        ("KAFKA_PROCESS_ROLES", "broker,controller"),
        ("KAFKA_CONTROLLER_QUORUM_VOTERS", "1@broker:29093"),
        ("KAFKA_CONTROLLER_LISTENER_NAMES", "CONTROLLER"),
        ("KAFKA_LISTENER_SECURITY_PROTOCOL_MAP", "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,PLAINTEXT_HOST:PLAINTEXT"),
        ("KAFKA_LISTENERS", "CONTROLLER://127.0.0.1:0,PLAINTEXT_HOST://127.0.0.1:0,PLAINTEXT://127.0.0.1:0"),
        ("KAFKA_ADVERTISED_LISTENERS", "PLAINTEXT_HOST://localhost:9092,PLAINTEXT://broker:19092"),
        ("KAFKA_LOG_DIRS", &dir.path().display().to_string()),
        ("STROM_STROM_HTTP_LISTENER", "127.0.0.1:0"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let config = Config::from_sources(None, &env, &BTreeMap::new()).expect("config");
    let broker = strom::Broker::bind(config).await.expect("bind");
    let addrs = broker.local_addrs().expect("addrs");
    assert_eq!(addrs.len(), 2, "the controller listener is not bound");
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(broker.run(async move {
        let _ = rx.await;
    }));

    for (addr, want) in addrs.iter().zip([("localhost", 9092), ("broker", 19092)]) {
        let mut c = Client::connect(&addr.to_string(), Duration::from_secs(10)).await.expect("connect");
        let md: MetadataResponse =
            c.call_at(12, &MetadataRequest { topics: Some(vec![]), ..Default::default() }).await.expect("metadata");
        assert_eq!(md.brokers.len(), 1);
        assert_eq!((md.brokers[0].host.as_str(), md.brokers[0].port), (want.0, want.1), "metadata via {addr}");
        let fc: FindCoordinatorResponse = c
            .call_at(
                4,
                &FindCoordinatorRequest { key_type: 0, coordinator_keys: vec!["g".into()], ..Default::default() },
            )
            .await
            .expect("find coordinator");
        let co = &fc.coordinators[0];
        assert_eq!((co.host.as_str(), co.port), (want.0, want.1), "coordinator via {addr}");
        let dc: DescribeClusterResponse =
            c.call_at(1, &DescribeClusterRequest { endpoint_type: 1, ..Default::default() }).await.expect("cluster");
        assert_eq!((dc.brokers[0].host.as_str(), dc.brokers[0].port), (want.0, want.1), "cluster via {addr}");
    }
    let _ = tx.send(());
    task.await.expect("join").expect("broker");
}
