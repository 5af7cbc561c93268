CREATE DATABASE ehub_cn_gateway;
CREATE DATABASE ehub_cn_catalog;
CREATE DATABASE ehub_cn_customs;
CREATE DATABASE ehub_cn_logistics;
CREATE DATABASE ehub_ca_gateway;
CREATE DATABASE ehub_ca_catalog;
CREATE DATABASE ehub_ca_customs;
CREATE DATABASE ehub_ca_logistics;
