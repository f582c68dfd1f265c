"""SQLAlchemy's test provisioning for the ambisql dialects: its test plugin imports the
dialect package's `provision` module (load_provisioning()). MySQL's and MariaDB's
provisioning (creating the follower databases, naming a MariaDB engine `mariadb`) is
SQLAlchemy's own MySQL dialect's, for any driver."""
import sqlalchemy.dialects.mysql.provision  # noqa: F401 (registers it)
