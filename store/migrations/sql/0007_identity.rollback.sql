-- Drop the identity tables. This deletes every account, session and bound device.
DROP TABLE one_time_codes;
DROP TABLE devices;
DROP TABLE sessions;
DROP TABLE login_failures;
DROP TABLE account_roles;
DROP TABLE accounts;
DROP TABLE organisations;
DROP FUNCTION organisations_check_parent();
