-- Login tokens carry the generation of the password they were issued under; changing the
-- password bumps it, so every token issued before the change stops working at once.
ALTER TABLE users ADD COLUMN token_generation INTEGER NOT NULL DEFAULT 0;
