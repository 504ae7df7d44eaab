-- Global sequences of handler type 1 (server.xml sequenceHandlerType=1): the table and function
-- shardcat calls on the dataNode that sequence_db_conf.properties names for each sequence
-- (NAME=dataNode), as Mycat 1.6 does. `SELECT mycat_seq_nextval('NAME')` takes `increment` ids at
-- once and answers "first,increment"; shardcat hands them out before it asks again, so `increment`
-- is the block each proxy process reserves. Run it in the dataNode's database:
--   mariadb -h HOST -u USER -p DATABASE < docs/dbseq.sql
-- With binary logging on, creating the function needs log_bin_trust_function_creators=1 (or SUPER).
CREATE TABLE IF NOT EXISTS MYCAT_SEQUENCE (
  name VARCHAR(64) NOT NULL PRIMARY KEY,
  current_value BIGINT NOT NULL,
  increment INT NOT NULL DEFAULT 100
) ENGINE=InnoDB;
DROP FUNCTION IF EXISTS mycat_seq_nextval;
DELIMITER $$
CREATE FUNCTION mycat_seq_nextval(seq_name VARCHAR(64)) RETURNS VARCHAR(64)
  NOT DETERMINISTIC MODIFIES SQL DATA
BEGIN
  DECLARE cur BIGINT DEFAULT NULL;
  DECLARE inc INT DEFAULT NULL;
  -- the row stays locked until the calling statement ends: concurrent callers take blocks in turn
  UPDATE MYCAT_SEQUENCE SET current_value = current_value + increment WHERE name = seq_name;
  SELECT MAX(current_value), MAX(increment) INTO cur, inc FROM MYCAT_SEQUENCE WHERE name = seq_name;
  IF cur IS NULL THEN
    RETURN NULL;
  END IF;
  RETURN CONCAT(cur - inc + 1, ',', inc);
END$$
DELIMITER ;
-- INSERT INTO MYCAT_SEQUENCE VALUES ('GLOBAL', 0, 100);
