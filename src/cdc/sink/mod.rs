//! The brokers a feed publishes to, behind one interface: `send` puts an event on its way (in order)
//! and returns the broker's acknowledgement to await; the position moves only when that resolves.

mod nats;
mod rabbitmq;
mod redis;

use futures_util::future::BoxFuture;

use crate::config::model::SinkKind;

/// The broker's acknowledgement of one event.
pub type Ack = BoxFuture<'static, Result<(), String>>;

/// Where an event goes, named in the sink's templates.
pub struct Addressed<'a> {
    pub schema: &'a str,
    pub table: &'a str,
    /// The id the broker (or its consumer) de-duplicates by.
    pub id: &'a str,
    pub payload: Vec<u8>,
}

/// A connected sink.
pub enum Publisher {
    Nats(nats::Nats),
    RabbitMq(rabbitmq::Rabbit),
    Redis(redis::Streams),
}

/// `{schema}` and `{table}` of a sink's name template filled in.
pub fn fill(template: &str, schema: &str, table: &str) -> String {
    template.replace("{schema}", schema).replace("{table}", table)
}

impl Publisher {
    pub async fn connect(kind: &SinkKind) -> Result<Publisher, String> {
        match kind {
            SinkKind::Nats { url, subject, stream } => {
                nats::Nats::connect(url, subject, stream.as_deref()).await.map(Publisher::Nats)
            }
            SinkKind::RabbitMq { url, exchange, routing_key } => {
                rabbitmq::Rabbit::connect(url, exchange, routing_key).await.map(Publisher::RabbitMq)
            }
            SinkKind::Redis { url, stream, max_len } => {
                redis::Streams::connect(url, stream, *max_len).await.map(Publisher::Redis)
            }
        }
    }

    /// Sends one event; events are sent in the order of the calls.
    pub async fn send(&mut self, ev: Addressed<'_>) -> Result<Ack, String> {
        match self {
            Publisher::Nats(n) => n.send(ev).await,
            Publisher::RabbitMq(r) => r.send(ev).await,
            Publisher::Redis(r) => r.send(ev).await,
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn templates_name_the_logical_table() {
        assert_eq!(super::fill("shardcat.{schema}.{table}", "shop", "orders"), "shardcat.shop.orders");
        assert_eq!(super::fill("fixed", "shop", "orders"), "fixed");
    }
}
