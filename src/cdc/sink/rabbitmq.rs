//! RabbitMQ: each event published persistent to a durable topic exchange with its routing key and
//! `message_id` = its id, on a channel in confirm mode; the broker's confirm is the acknowledgement.

use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Confirmation, Connection, ConnectionProperties, ExchangeKind};

use super::{fill, Ack, Addressed};

pub struct Rabbit {
    // the connection lives as long as its channel is used
    _conn: Connection,
    channel: lapin::Channel,
    exchange: String,
    routing_key: String,
}

impl Rabbit {
    pub async fn connect(url: &str, exchange: &str, routing_key: &str) -> Result<Rabbit, String> {
        let conn = Connection::connect(url, ConnectionProperties::default())
            .await
            .map_err(|e| format!("RabbitMQ {}: {e}", crate::config::summary::redact(url)))?;
        let channel = conn.create_channel().await.map_err(|e| format!("RabbitMQ channel: {e}"))?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(|e| format!("RabbitMQ confirm mode: {e}"))?;
        channel
            .exchange_declare(
                exchange.into(),
                ExchangeKind::Topic,
                ExchangeDeclareOptions { durable: true, ..Default::default() },
                FieldTable::default(),
            )
            .await
            .map_err(|e| format!("RabbitMQ exchange {exchange}: {e}"))?;
        Ok(Rabbit { _conn: conn, channel, exchange: exchange.to_string(), routing_key: routing_key.to_string() })
    }

    pub async fn send(&mut self, ev: Addressed<'_>) -> Result<Ack, String> {
        let key = fill(&self.routing_key, ev.schema, ev.table);
        let props = BasicProperties::default()
            .with_message_id(ev.id.into())
            .with_content_type("application/json".into())
            .with_delivery_mode(2);
        let confirm = self
            .channel
            .basic_publish(
                self.exchange.as_str().into(),
                key.into(),
                BasicPublishOptions::default(),
                &ev.payload,
                props,
            )
            .await
            .map_err(|e| format!("RabbitMQ publish: {e}"))?;
        Ok(Box::pin(async move {
            match confirm.await {
                Ok(Confirmation::Ack(_)) | Ok(Confirmation::NotRequested) => Ok(()),
                Ok(Confirmation::Nack(_)) => Err("RabbitMQ refused the event (nack)".to_string()),
                Err(e) => Err(format!("RabbitMQ confirm: {e}")),
            }
        }))
    }
}
