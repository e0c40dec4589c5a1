-- Console sign-outs. A session cookie is signed, not stored, so it cannot be deleted on the
-- server; it carries the generation of its officer's sessions when it was made instead, and
-- signing out moves the officer to the next generation: every cookie made before, a copied
-- one included, stops working on every device. No row: generation 0.
CREATE TABLE console_sessions (
    officer_id  text    PRIMARY KEY,
    generation  integer NOT NULL
);
