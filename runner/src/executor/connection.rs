//! One wrapper's websocket, speaking envelopes in the negotiated encoding.

use axum::extract::ws::{Message, WebSocket};
use std::time::Duration;

use crate::protocol::{self, Encoding, Envelope, Frame, StorageProtocol};

pub struct WorkerConnection {
    socket: WebSocket,
    encoding: Encoding,
    storage: StorageProtocol,
    /// Our own pings keep the connection (and any proxy on the way) alive
    /// while the other side is silent, e.g. sitting on a breakpoint.
    keepalive: Option<tokio::time::Interval>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    #[error("connection closed")]
    Closed,
    #[error("websocket error: {0}")]
    Socket(String),
    #[error("protocol error: {0}")]
    Protocol(String),
}

impl WorkerConnection {
    pub fn new(socket: WebSocket, encoding: Encoding) -> Self {
        WorkerConnection { socket, encoding, storage: StorageProtocol::V1, keepalive: None }
    }

    /// The wrapper reads and stores task data itself (`storage=v3`).
    pub fn with_storage(mut self, storage: StorageProtocol) -> Self {
        self.storage = storage;
        self
    }

    pub fn storage(&self) -> StorageProtocol {
        self.storage
    }

    /// Ping the other side every `every` while waiting for its messages.
    pub fn with_keepalive(mut self, every: Duration) -> Self {
        let mut interval = tokio::time::interval(every);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        self.keepalive = Some(interval);
        self
    }

    /// Send a raw frame (e.g. a close with a code).
    pub async fn send_message(&mut self, message: Message) -> Result<(), ConnectionError> {
        self.socket.send(message).await.map_err(|e| ConnectionError::Socket(e.to_string()))
    }

    pub fn encoding(&self) -> Encoding {
        self.encoding
    }

    pub async fn send(&mut self, envelope: &Envelope) -> Result<(), ConnectionError> {
        let frame = protocol::encode(self.encoding, envelope).map_err(|e| ConnectionError::Protocol(e.0))?;
        self.send_frame(frame).await
    }

    /// `{command, data}`, without copying `data` (a task object, on every task).
    pub async fn send_parts(&mut self, command: &str, data: &serde_json::Value) -> Result<(), ConnectionError> {
        let frame =
            protocol::codec::encode_parts(self.encoding, command, data).map_err(|e| ConnectionError::Protocol(e.0))?;
        self.send_frame(frame).await
    }

    async fn send_frame(&mut self, frame: Frame) -> Result<(), ConnectionError> {
        let message = match frame {
            Frame::Text(t) => Message::Text(t.into()),
            Frame::Binary(b) => Message::Binary(b.into()),
        };
        self.socket.send(message).await.map_err(|e| ConnectionError::Socket(e.to_string()))
    }

    /// The next envelope. Pings are answered by the library; pongs and
    /// undecodable frames are skipped (the latter logged). Cancel-safe.
    pub async fn recv(&mut self) -> Result<Envelope, ConnectionError> {
        loop {
            let received = match self.keepalive.as_mut() {
                Some(interval) => tokio::select! {
                    received = self.socket.recv() => received,
                    _ = interval.tick() => {
                        self.socket.send(Message::Ping(Vec::new().into())).await.map_err(|e| ConnectionError::Socket(e.to_string()))?;
                        continue;
                    }
                },
                None => self.socket.recv().await,
            };
            // Decoded where the frame lies, without a copy.
            let decoded = match received {
                None => return Err(ConnectionError::Closed),
                Some(Err(e)) => return Err(ConnectionError::Socket(e.to_string())),
                Some(Ok(Message::Text(t))) => protocol::codec::decode_text(t.as_str()),
                Some(Ok(Message::Binary(b))) => protocol::codec::decode_binary(self.encoding, &b),
                Some(Ok(Message::Close(_))) => return Err(ConnectionError::Closed),
                Some(Ok(_)) => continue,
            };
            match decoded {
                Ok(envelope) => return Ok(envelope),
                Err(e) => tracing::warn!("ignoring an undecodable message from a wrapper: {e}"),
            }
        }
    }

    /// Send `exit` and close, best effort.
    pub async fn close(&mut self, exit_code: i64) {
        let exit = Envelope::new("exit", serde_json::json!({ "exitCode": exit_code }));
        let _ = tokio::time::timeout(Duration::from_secs(1), self.send(&exit)).await;
        let _ = tokio::time::timeout(Duration::from_secs(1), self.socket.send(Message::Close(None))).await;
    }
}
