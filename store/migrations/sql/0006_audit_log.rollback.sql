-- Drop the operation log. This deletes every audit record: export them first.
DROP TABLE audit_head;
DROP TABLE audit_log;
DROP FUNCTION audit_head_check_advance();
DROP FUNCTION audit_log_reject_change();
