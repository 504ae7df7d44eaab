// Connector/J over TLS through shardcat (issue 15): connects as a user that may log in only over TLS,
// with useSsl=true&trustServerCertificate=true, and prints the session's answer. Exit 1 on failure.
// usage: java JdbcTls PROXY_PORT
import java.sql.*;

public class JdbcTls {
    public static void main(String[] args) throws Exception {
        String url = "jdbc:mariadb://127.0.0.1:" + args[0] + "/shard?user=secure&password=secure"
            + "&useSsl=true&trustServerCertificate=true";
        try (Connection c = DriverManager.getConnection(url);
             Statement s = c.createStatement();
             ResultSet r = s.executeQuery("SELECT 'jdbc over tls' AS how")) {
            r.next();
            System.out.println(r.getString(1));
        }
    }
}
