// MariaDB Connector/J through shardcat, compared with the same driver direct to MariaDB: Statement,
// PreparedStatement with server-side prepares, transactions, generated keys, long data, batches,
// result metadata. Prints every mismatch and exits 1 if there is one.
//
// usage: java -cp mariadb-java-client.jar:. JdbcCheck PROXY_PORT DIRECT_PORT
import java.io.ByteArrayInputStream;
import java.sql.*;
import java.util.*;

public class JdbcCheck {
    static List<String> failures = new ArrayList<>();

    static void check(boolean ok, String what) {
        if (!ok) failures.add(what);
    }

    static Connection connect(int port, String user, String pass) throws SQLException {
        String url = "jdbc:mariadb://127.0.0.1:" + port + "/passthru?useServerPrepStmts=true";
        return DriverManager.getConnection(url, user, pass);
    }

    static String describe(ResultSetMetaData md) throws SQLException {
        StringBuilder sb = new StringBuilder();
        for (int i = 1; i <= md.getColumnCount(); i++) {
            sb.append(md.getColumnLabel(i)).append(':').append(md.getColumnTypeName(i)).append('/')
              .append(md.getColumnType(i)).append('/').append(md.getPrecision(i)).append('/')
              .append(md.getScale(i)).append('/').append(md.isNullable(i)).append('/')
              .append(md.isSigned(i)).append(' ');
        }
        return sb.toString();
    }

    static List<String> rows(ResultSet rs) throws SQLException {
        List<String> out = new ArrayList<>();
        int n = rs.getMetaData().getColumnCount();
        while (rs.next()) {
            StringBuilder sb = new StringBuilder();
            for (int i = 1; i <= n; i++) sb.append(rs.getString(i)).append('|');
            out.add(sb.toString());
        }
        return out;
    }

    public static void main(String[] args) throws Exception {
        int proxyPort = Integer.parseInt(args[0]);
        int directPort = Integer.parseInt(args[1]);
        try (Connection p = connect(proxyPort, "app", "app"); Connection d = connect(directPort, "proxy", "proxy")) {
            try (Statement s = d.createStatement()) {
                s.execute("DROP TABLE IF EXISTS j_types");
                s.execute("CREATE TABLE j_types (id INT PRIMARY KEY AUTO_INCREMENT, v VARCHAR(30), dec1 DECIMAL(10,2), "
                        + "ts DATETIME(6), b LONGBLOB, f DOUBLE, u BIGINT UNSIGNED)");
                s.execute("INSERT INTO j_types (v, dec1, ts, f, u) VALUES ('a', 1.25, '2024-01-02 03:04:05.123456', 0.5, 18446744073709551615), ('b', NULL, NULL, NULL, 0)");
            }
            // Statement and PreparedStatement: same metadata and rows as direct
            String[] queries = {"SELECT id, v, dec1, ts, f, u FROM j_types ORDER BY id", "SELECT COUNT(*) AS n, AVG(dec1) AS a FROM j_types"};
            for (String q : queries) {
                try (Statement sp = p.createStatement(); Statement sd = d.createStatement();
                     ResultSet rp = sp.executeQuery(q); ResultSet rd = sd.executeQuery(q)) {
                    check(describe(rp.getMetaData()).equals(describe(rd.getMetaData())), "text metadata differs: " + q + "\n  " + describe(rp.getMetaData()) + "\n  " + describe(rd.getMetaData()));
                    check(rows(rp).equals(rows(rd)), "text rows differ: " + q);
                }
            }
            for (Connection c : new Connection[] {p, d}) {
                try (PreparedStatement ps = c.prepareStatement("SELECT id, v, dec1, ts FROM j_types WHERE id >= ? AND v <> ? ORDER BY id")) {
                    ps.setInt(1, 1);
                    ps.setString(2, "zzz");
                    try (ResultSet rs = ps.executeQuery()) {
                        List<String> r = rows(rs);
                        check(r.size() == 2 && r.get(0).startsWith("1|a|1.25|2024-01-02 03:04:05.123456"), "prepared select via " + (c == p ? "proxy" : "direct") + ": " + r);
                    }
                    ps.setInt(1, 2); // re-execute with new parameters
                    ps.setString(2, "a");
                    try (ResultSet rs = ps.executeQuery()) {
                        check(rows(rs).size() == 1, "prepared re-execute");
                    }
                }
            }
            // generated keys
            try (PreparedStatement ps = p.prepareStatement("INSERT INTO j_types (v) VALUES (?)", Statement.RETURN_GENERATED_KEYS)) {
                ps.setString(1, "gk");
                check(ps.executeUpdate() == 1, "insert count");
                try (ResultSet keys = ps.getGeneratedKeys()) {
                    check(keys.next() && keys.getLong(1) >= 3, "generated key missing");
                }
            }
            // long data: setBinaryStream sends COM_STMT_SEND_LONG_DATA
            byte[] blob = new byte[3 * 1024 * 1024];
            for (int i = 0; i < blob.length; i++) blob[i] = (byte) (i * 31);
            try (PreparedStatement ps = p.prepareStatement("UPDATE j_types SET b = ? WHERE id = ?")) {
                ps.setBinaryStream(1, new ByteArrayInputStream(blob), blob.length);
                ps.setInt(2, 1);
                check(ps.executeUpdate() == 1, "long data update count");
            }
            try (Statement s = d.createStatement(); ResultSet rs = s.executeQuery("SELECT b FROM j_types WHERE id = 1")) {
                check(rs.next() && Arrays.equals(rs.getBytes(1), blob), "long data did not arrive intact");
            }
            // batch update counts
            try (PreparedStatement ps = p.prepareStatement("UPDATE j_types SET f = ? WHERE id <= ?")) {
                ps.setDouble(1, 1.0); ps.setInt(2, 1); ps.addBatch();
                ps.setDouble(1, 2.0); ps.setInt(2, 2); ps.addBatch();
                ps.setDouble(1, 3.0); ps.setInt(2, 0); ps.addBatch();
                int[] counts = ps.executeBatch();
                check(Arrays.equals(counts, new int[] {1, 2, 0}), "batch counts " + Arrays.toString(counts));
            }
            try (Statement s = p.createStatement()) {
                s.addBatch("INSERT INTO j_types (v) VALUES ('x1')");
                s.addBatch("INSERT INTO j_types (v) VALUES ('x2')");
                s.addBatch("DELETE FROM j_types WHERE v LIKE 'x%'");
                int[] counts = s.executeBatch();
                check(Arrays.equals(counts, new int[] {1, 1, 2}), "statement batch counts " + Arrays.toString(counts));
            }
            // a transaction that rolls back, one that commits
            p.setAutoCommit(false);
            try (Statement s = p.createStatement()) {
                s.executeUpdate("INSERT INTO j_types (v) VALUES ('rolled-back')");
            }
            p.rollback();
            try (PreparedStatement ps = p.prepareStatement("INSERT INTO j_types (v) VALUES (?)")) {
                ps.setString(1, "committed");
                ps.executeUpdate();
            }
            p.commit();
            p.setAutoCommit(true);
            try (Statement s = d.createStatement(); ResultSet rs = s.executeQuery("SELECT SUM(v='rolled-back'), SUM(v='committed') FROM j_types")) {
                rs.next();
                check(rs.getInt(1) == 0, "JDBC rollback did not roll back");
                check(rs.getInt(2) == 1, "JDBC commit lost the row");
            }
            // errors: code and SQLSTATE as MariaDB sends them
            for (Connection c : new Connection[] {p, d}) {
                try (Statement s = c.createStatement()) {
                    s.executeQuery("SELECT * FROM no_such_table_jdbc");
                    check(false, "no error for a missing table");
                } catch (SQLException e) {
                    check(e.getErrorCode() == 1146 && "42S02".equals(e.getSQLState()), "error " + e.getErrorCode() + " " + e.getSQLState());
                }
            }
        }
        if (!failures.isEmpty()) {
            for (String f : failures) System.out.println(f);
            System.exit(1);
        }
        System.out.println("jdbc: all checks passed");
    }
}
