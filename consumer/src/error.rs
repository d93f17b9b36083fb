use thiserror::Error;

#[derive(Debug, Error)]
pub enum Error {
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("topic `{0}` does not exist on the broker")]
    MissingTopic(String),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("{0}")]
    Schema(#[from] flagstream_migrations::Error),
    #[error("rules: {0}")]
    Rules(#[from] flagstream_rules::Error),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("configuration: {0}")]
    Config(String),
    #[error("content sealing: {0}")]
    Seal(String),
    #[error("evaluation worker failed: {0}")]
    Worker(String),
}
