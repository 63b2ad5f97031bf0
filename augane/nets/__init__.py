"""Networks in their reference formats: ResNet backbones, DECA/EMOCA encoders, the MEFARG AU detector."""
