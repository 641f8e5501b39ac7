-- Drop the used TOTP steps. Codes of the current 30-second step can then be replayed.
DROP TABLE totp_last_steps;
