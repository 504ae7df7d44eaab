//! NATS JetStream: each event published on its subject with `Nats-Msg-Id` = its id (the stream drops a
//! duplicate inside its window), acknowledged by the PubAck; the stream is created when missing.

use super::{fill, Ack, Addressed};

pub struct Nats {
    js: async_nats::jetstream::Context,
    subject: String,
}

impl Nats {
    pub async fn connect(url: &str, subject: &str, stream: Option<&str>) -> Result<Nats, String> {
        let client = async_nats::connect(url).await.map_err(|e| format!("NATS {url}: {e}"))?;
        let js = async_nats::jetstream::new(client);
        if let Some(name) = stream {
            // every subject the template can give: each placeholder one token
            let pattern = fill(subject, "*", "*");
            let cfg = async_nats::jetstream::stream::Config {
                name: name.to_string(),
                subjects: vec![pattern],
                ..Default::default()
            };
            js.get_or_create_stream(cfg).await.map_err(|e| format!("NATS stream {name}: {e}"))?;
        }
        Ok(Nats { js, subject: subject.to_string() })
    }

    pub async fn send(&mut self, ev: Addressed<'_>) -> Result<Ack, String> {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", ev.id);
        let subject = fill(&self.subject, ev.schema, ev.table);
        let ack = self
            .js
            .publish_with_headers(subject, headers, ev.payload.into())
            .await
            .map_err(|e| format!("NATS publish: {e}"))?;
        Ok(Box::pin(async move { ack.await.map(|_| ()).map_err(|e| format!("NATS acknowledgement: {e}")) }))
    }
}
