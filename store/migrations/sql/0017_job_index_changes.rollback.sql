DROP TABLE job_index_changes;
