-- Drop the idempotency keys; the anchors they pointed to stay.
DROP TABLE idempotency_keys;
