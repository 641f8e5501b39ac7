DROP TABLE push_inbox;
DROP TABLE push_outbox;
DROP TABLE push_shown;
DROP TABLE push_consents;
