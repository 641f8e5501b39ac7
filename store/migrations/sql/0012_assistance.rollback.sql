-- Drop the assistance targets, the 131 ledger and the return visits with everything in them.
DROP TABLE assistance_visits;
DROP TABLE service_131_recommendations;
DROP TABLE assistance_targets;
