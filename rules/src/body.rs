//! Text pulled out of provider request and response bodies (OpenAI chat, Anthropic
//! messages), so rules address `prompt`, `system`, `response` and `tool_args` whichever
//! provider the gateway fronted.

use serde_json::Value;

#[derive(Debug, Default)]
pub(crate) struct Texts {
    pub prompt: Vec<String>,
    pub system: Vec<String>,
    pub response: Vec<String>,
    pub tool_args: Vec<String>,
    pub tokens_in: Option<u64>,
    pub tokens_out: Option<u64>,
}

fn join(parts: Vec<String>) -> Option<String> {
    (!parts.is_empty()).then(|| parts.join("\n"))
}

impl Texts {
    pub fn prompt(&mut self) -> Option<String> {
        join(std::mem::take(&mut self.prompt))
    }
    pub fn system(&mut self) -> Option<String> {
        join(std::mem::take(&mut self.system))
    }
    pub fn response(&mut self) -> Option<String> {
        join(std::mem::take(&mut self.response))
    }
    pub fn tool_args(&mut self) -> Option<String> {
        join(std::mem::take(&mut self.tool_args))
    }

    /// A request's `messages[]`. Everything but system text counts as prompt, tool results
    /// and earlier assistant turns included: an injection planted there reaches the model too.
    pub fn add_messages(&mut self, messages: &Value) {
        for message in messages.as_array().into_iter().flatten() {
            let role = message
                .get("role")
                .and_then(Value::as_str)
                .unwrap_or("user");
            let is_system = matches!(role, "system" | "developer");
            if let Some(content) = message.get("content") {
                let mut texts = Vec::new();
                self.add_content(content, &mut texts);
                if is_system {
                    self.system.extend(texts);
                } else {
                    self.prompt.extend(texts);
                }
            }
            self.add_tool_calls(message);
        }
    }

    /// Anthropic's top-level `system`: a string or text blocks.
    pub fn add_system(&mut self, system: &Value) {
        let mut texts = Vec::new();
        self.add_content(system, &mut texts);
        self.system.extend(texts);
    }

    /// A provider response object: OpenAI `choices[]` or Anthropic `content[]`, and `usage`.
    /// Returns false when no text was found in it.
    pub fn add_response(&mut self, response: &Value) -> bool {
        let before = self.response.len() + self.tool_args.len();
        for choice in response
            .get("choices")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(message) = choice.get("message") {
                if let Some(content) = message.get("content") {
                    let mut texts = Vec::new();
                    self.add_content(content, &mut texts);
                    self.response.extend(texts);
                }
                self.add_tool_calls(message);
            }
            if let Some(text) = choice.get("text").and_then(Value::as_str) {
                self.response.push(text.to_owned());
            }
        }
        if let Some(content) = response.get("content") {
            let mut texts = Vec::new();
            self.add_content(content, &mut texts);
            self.response.extend(texts);
        }
        if let Some(usage) = response.get("usage") {
            let n = |k: &str| usage.get(k).and_then(Value::as_u64);
            self.tokens_in = n("prompt_tokens").or_else(|| n("input_tokens"));
            self.tokens_out = n("completion_tokens").or_else(|| n("output_tokens"));
        }
        self.response.len() + self.tool_args.len() > before
    }

    fn add_tool_calls(&mut self, message: &Value) {
        for call in message
            .get("tool_calls")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            match call.pointer("/function/arguments") {
                Some(Value::String(s)) => self.tool_args.push(s.clone()),
                Some(other) if !other.is_null() => self.tool_args.push(other.to_string()),
                _ => {}
            }
        }
    }

    /// Message content: a string, or parts/blocks (`text`, `tool_use`, `tool_result`).
    fn add_content(&mut self, content: &Value, texts: &mut Vec<String>) {
        match content {
            Value::String(s) => texts.push(s.clone()),
            Value::Array(parts) => {
                for part in parts {
                    match part.get("type").and_then(Value::as_str) {
                        Some("tool_use") => {
                            if let Some(input) = part.get("input") {
                                self.tool_args.push(input.to_string());
                            }
                        }
                        Some("tool_result") => {
                            if let Some(inner) = part.get("content") {
                                self.add_content(inner, texts);
                            }
                        }
                        _ => {
                            if let Some(text) = part.get("text").and_then(Value::as_str) {
                                texts.push(text.to_owned());
                            } else if let Value::String(s) = part {
                                texts.push(s.clone());
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }
}
