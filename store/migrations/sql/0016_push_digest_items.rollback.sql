DROP TABLE push_digest_items;
